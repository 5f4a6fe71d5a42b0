"""Two bot processes on one PostgreSQL database, every group in both accounts, a model answering
after 50–500 ms: every message stored once and in order, one answer each."""

from __future__ import annotations

from pathlib import Path

from bot.bench.cluster import cluster_load

ROOT = Path(__file__).resolve().parents[2]
GROUPS = 200
PER_GROUP = 20


async def test_two_processes_lose_nothing_and_double_nothing(tmp_path: Path, postgres_url: str) -> None:
    result = await cluster_load(
        postgres_url, ROOT / "characters", tmp_path, processes=2, groups=GROUPS, per_group=PER_GROUP
    )
    print(result)
    assert result.sent == GROUPS * PER_GROUP
    assert result.answered == result.sent
    assert (result.stored, result.lost, result.duplicated, result.out_of_order) == (result.sent, 0, 0, 0)
    assert 0 < result.latency_ms.median <= result.latency_ms.p95
    assert result.latency_ms.median >= 50, "every answer waited for the model"
