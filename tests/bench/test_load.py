"""Throughput through the real OneBot path: a bot process, an OpenAI-compatible server, one WebSocket."""

from __future__ import annotations

from pathlib import Path

from bot.bench.load import onebot_load

ROOT = Path(__file__).resolve().parents[2]


async def test_many_groups_are_answered_concurrently(tmp_path: Path) -> None:
    instant = await onebot_load(
        ROOT / "characters",
        ROOT / "data",
        tmp_path / "instant",
        groups=4,
        messages_per_group=2,
        warmup_messages=1,
    )
    assert (instant.replies, instant.errors) == (8, 0)
    assert instant.per_second > 0
    assert 0 < instant.latency_ms.median <= instant.latency_ms.p95

    slow = await onebot_load(
        ROOT / "characters",
        ROOT / "data",
        tmp_path / "slow",
        groups=4,
        messages_per_group=2,
        warmup_messages=1,
        model_delay_s=0.5,
    )
    assert (slow.replies, slow.errors) == (8, 0)
    assert slow.latency_ms.median >= 500, "every reply waited for the slow model"
    assert slow.seconds < 0.6 * 8 * 0.5, "the four groups' replies were computed at the same time"
