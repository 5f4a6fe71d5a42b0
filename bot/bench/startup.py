"""Start-up time and resident memory with many packs, cold (no embedding cache) and warm.

Each measurement is a fresh process (``python -m bot.bench.startup CONFIG``) that builds the runtime
the way the bot does, with an instant model so the figure is the engine's own: *ready* is when it
answers (from the process's birth, imports included), *indexed* when every scene's embedding is
computed or read from the cache, *rss* the resident memory then.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bot.bench.stats import Percentiles
from bot.engine.packs import CharacterPack
from bot.errors import BotError, ConfigError, missing_extra

PERSONA = (
    "You are {name}, keeper of light number {number} on a rocky coast. You are dry, practical and kind "
    "underneath; you keep a logbook, a cat and a kettle. Speak briefly."
)


class StartupError(BotError):
    """A start-up probe failed; the message holds the end of its output."""


@dataclass(slots=True, frozen=True)
class StartupResult:
    packs: int
    scenes_per_pack: int
    cold: bool
    ready_s: Percentiles
    indexed_s: Percentiles
    rss_mb: Percentiles


def require_psutil() -> ModuleType:
    """psutil, which a probe reads its birth time and resident memory with (the ``bench`` extra)."""
    try:
        import psutil
    except ModuleNotFoundError as exc:
        raise missing_extra(ConfigError, "measuring the start-up", "psutil", "bench") from exc
    module: ModuleType = psutil  # psutil ships no type hints
    return module


def write_bench_packs(template: CharacterPack, root: Path, count: int, scenes: int) -> list[str]:
    """``count`` packs of ``scenes`` scenes each under ``root``, varied from ``template``'s scenes so
    every scene (and every pack's embedding cache) is distinct; returns their ids."""
    ids = []
    for number in range(count):
        pack_id = f"bench{number:02d}"
        folder = root / pack_id
        (folder / "scenes").mkdir(parents=True, exist_ok=True)
        name = f"Keeper {number}"
        (folder / "character.toml").write_text(
            f'name = "{name}"\naliases = ["K{number}"]\nlanguage = "{template.settings.language}"\n'
            f'persona = """\n{PERSONA.format(name=name, number=number)}\n"""\n',
            encoding="utf-8",
        )
        for index in range(scenes):
            scene = template.scenes[index % len(template.scenes)]
            lines = [line.render() for line in scene.lines]
            lines.append(f"Narrator:「Night {index + 1} of the log at light {number}.」")
            (folder / "scenes" / f"{index:04d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        ids.append(pack_id)
    return ids


def probe_config(work: Path, characters: Path, data: Path, default: str) -> Path:
    """A ``bot.toml`` for a probe: the packs, a fresh SQLite file, ``data`` for the embedding cache."""
    config = work / "bot.toml"
    config.write_text(
        f'[characters]\ndir = "{characters.as_posix()}"\ndefault = "{default}"\n\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{(work / "bot.sqlite3").as_posix()}"\n'
        f'data_dir = "{data.as_posix()}"\n',
        encoding="utf-8",
    )
    return config


def run_probe(config: Path, timeout_s: float = 1800.0) -> dict[str, float]:
    """One probe process; its figures."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.bench.startup", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise StartupError(f"the start-up probe failed ({done.returncode}): {done.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(lines[-1])
    return figures


def measure_startup(
    template: CharacterPack, work: Path, *, packs: int, scenes: int, repeats: int = 3
) -> tuple[StartupResult, StartupResult]:
    """Cold (first start, empty cache) and warm (``repeats`` starts over the filled cache) figures."""
    require_psutil()
    characters = work / f"packs-{packs}x{scenes}"
    ids = write_bench_packs(template, characters, packs, scenes)
    data = work / f"data-{packs}x{scenes}"
    runs = []
    for attempt in range(repeats + 1):
        probe = work / f"probe-{packs}x{scenes}-{attempt}"
        probe.mkdir(parents=True, exist_ok=True)
        runs.append(run_probe(probe_config(probe, characters, data, ids[0])))

    def result(chosen: list[dict[str, float]], cold: bool) -> StartupResult:
        return StartupResult(
            packs,
            scenes,
            cold,
            Percentiles.of([run["ready_s"] for run in chosen]),
            Percentiles.of([run["indexed_s"] for run in chosen]),
            Percentiles.of([run["rss_mb"] for run in chosen]),
        )

    return result(runs[:1], True), result(runs[1:], False)


async def _probe(config_path: Path) -> dict[str, float]:
    from bot.config import load_config
    from bot.engine.model import EchoChatModel
    from bot.runtime import Runtime

    psutil = require_psutil()
    born = psutil.Process().create_time()
    runtime = await Runtime.create(load_config(config_path), model=EchoChatModel())
    ready = time.time() - born
    await runtime.background.wait()
    indexed = time.time() - born
    rss = psutil.Process().memory_info().rss / 1_000_000
    await runtime.aclose()
    return {"ready_s": ready, "indexed_s": indexed, "rss_mb": rss}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_probe(Path(sys.argv[1])))))  # noqa: T201 - the probe's answer
