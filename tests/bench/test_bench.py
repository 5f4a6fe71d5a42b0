"""``python -m bot bench`` on tiny settings: every part runs, and its figures are sane (not fixed values)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.bench.options import BenchOptions, parse_counts
from bot.bench.reference import write_story_folder
from bot.bench.run import format_report, run_bench, write_report
from bot.bench.stats import Percentiles
from bot.bench.workload import workload
from bot.config import BotConfig, parse_config
from bot.engine.packs import load_packs
from bot.errors import ConfigError
from tests.packs import write_pack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    """The shipped packs and the shared embedding cache of the repository's ``data/``."""
    return parse_config(
        {
            "characters": {"dir": str(ROOT / "characters")},
            "storage": {"url": "sqlite+aiosqlite:///bot.sqlite3", "data_dir": str(ROOT / "data")},
        },
        source=tmp_path / "bot.toml",
    )


def sane(figure: Percentiles, count: int) -> None:
    assert figure.count == count
    assert 0 < figure.median <= figure.p95


async def test_the_bench_measures_the_engine_the_reference_and_start_up(
    config: BotConfig, tmp_path: Path
) -> None:
    options = BenchOptions(messages=12, packs=(1, 2), scenes=4, repeats=1, skip=frozenset({"throughput"}))
    report = await run_bench(config, options, tmp_path / "work")

    assert report.engine is not None
    assert report.reference is not None
    sane(report.engine.overhead, 12)
    sane(report.reference.overhead, 12)
    sane(report.engine.tokens, 12)
    sane(report.reference.tokens, 12)
    assert report.ratio is not None
    assert report.ratio > 0
    assert set(report.engine.parts) == {"persona", "scenes", "history", "memory", "message"}
    assert [(result.packs, result.cold) for result in report.startup] == [
        (1, True),
        (1, False),
        (2, True),
        (2, False),
    ]
    for result in report.startup:
        assert 0 < result.ready_s.median <= result.indexed_s.median
        assert result.rss_mb.median > 50

    table = format_report(report)
    assert "engine overhead, ms" in table
    assert "chatharuhi 1.0.9, ms" in table
    assert "2 packs x 4 scenes, warm" in table
    written = json.loads(write_report(report, tmp_path / "data").read_text(encoding="utf-8"))
    assert written["engine"]["overhead_ms"]["count"] == 12
    assert written["ratio_engine_to_reference"] == pytest.approx(report.ratio)


def test_the_workload_is_the_same_for_both_and_never_repeats() -> None:
    english, chinese = workload(200), workload(200, "zh")
    assert len({message.text for message in english}) == 200
    assert len({message.text for message in chinese}) == 200
    assert workload(200) == english


def test_the_reference_reads_the_pack_as_a_story_folder(tmp_path: Path) -> None:
    write_pack(tmp_path / "characters")
    (pack,) = load_packs(tmp_path / "characters").packs
    folder = write_story_folder(pack, tmp_path / "story")
    assert sorted(path.name for path in folder.iterdir()) == ["001.txt", "002.txt", "003.txt"]
    assert (folder / "002.txt").read_text(encoding="utf-8").splitlines()[0] == (
        "Tam:「Your cat ate my fish again.」"
    )


def test_bad_bench_options_say_what_is_wrong() -> None:
    assert parse_counts("2,10,30") == (2, 10, 30)
    with pytest.raises(ConfigError, match="--packs: 'two' is not a comma-separated list of numbers"):
        parse_counts("two")
    with pytest.raises(ConfigError, match="at least one count of 1 or more"):
        parse_counts("0")


def test_the_bench_command_refuses_an_unknown_part(tmp_path: Path) -> None:
    from bot.cli import main

    config = tmp_path / "bot.toml"
    config.write_text(f'[characters]\ndir = "{(ROOT / "characters").as_posix()}"\n', encoding="utf-8")
    assert main(["--config", str(config), "bench", "--skip", "nope"]) == 2


async def test_without_the_bench_extra_start_up_says_what_to_install_before_anything_runs(
    config: BotConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # as if it were not installed
    needs = r'measuring the start-up needs psutil: pip install -e "\.\[bench\]"'
    with pytest.raises(ConfigError, match=needs):
        await run_bench(config, BenchOptions(), tmp_path / "work")
    assert not (tmp_path / "work").exists()
