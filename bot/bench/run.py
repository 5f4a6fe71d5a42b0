"""``python -m bot bench``: runs every measurement, prints one table, writes the figures as JSON.

Each part can be skipped (``--skip reference,throughput,startup``) and sized down, so CI runs the
whole path in seconds and an operator runs it at full size on their own machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.bench.engine import EngineRun, TimedModel, measure_engine
from bot.bench.options import PARTS, BenchOptions, parse_counts, parse_skip
from bot.bench.reference import VERSION, ReferenceRun, measure_reference
from bot.bench.startup import StartupResult, measure_startup, require_psutil
from bot.bench.stats import Percentiles
from bot.bench.workload import workload
from bot.config import BotConfig
from bot.engine.model import ChatModel, EchoChatModel
from bot.errors import ConfigError
from bot.runtime import Runtime

if TYPE_CHECKING:
    from bot.bench.load import LoadResult

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BenchReport:
    machine: str
    options: BenchOptions
    engine: EngineRun | None = None
    reference: ReferenceRun | None = None
    throughput: list[LoadResult] = field(default_factory=list)
    startup: list[StartupResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def memory_per_pack_mb(self) -> float | None:
        """Resident memory each more pack costs (warm starts, fewest packs against most)."""
        warm = sorted((result for result in self.startup if not result.cold), key=lambda result: result.packs)
        if len(warm) < 2 or warm[-1].packs == warm[0].packs:
            return None
        return (warm[-1].rss_mb.median - warm[0].rss_mb.median) / (warm[-1].packs - warm[0].packs)

    @property
    def ratio(self) -> float | None:
        """The engine's median overhead as a fraction of the reference's."""
        if self.engine is None or self.reference is None:
            return None
        return self.engine.overhead.median / self.reference.overhead.median

    def to_json(self) -> dict[str, Any]:
        def figures(value: object) -> object:
            if isinstance(value, Percentiles):
                return {"median": value.median, "p95": value.p95, "count": value.count}
            return value

        data: dict[str, Any] = {
            "machine": self.machine,
            "options": {**asdict(self.options), "skip": sorted(self.options.skip)},
            "seconds": self.seconds,
            "ratio_engine_to_reference": self.ratio,
            "memory_per_pack_mb": self.memory_per_pack_mb,
        }
        for name, run in (("engine", self.engine), ("reference", self.reference)):
            if run is not None:
                data[name] = {
                    "overhead_ms": figures(run.overhead),
                    "without_embedding_ms": figures(run.without_embedding),
                    "prompt_tokens": figures(run.tokens),
                    "samples_ms": run.overhead_ms,
                }
        if self.engine is not None:
            data["engine"]["prompt_parts"] = {
                part: figures(Percentiles.of([float(v) for v in values]))
                for part, values in self.engine.parts.items()
            }
        if self.reference is not None:
            data["reference"]["start_s"] = self.reference.start_s
        data["throughput"] = [
            {**{key: figures(value) for key, value in asdict(result).items()}} for result in self.throughput
        ]
        data["startup"] = [
            {**{key: figures(value) for key, value in asdict(result).items()}} for result in self.startup
        ]
        return data


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def run_bench(config: BotConfig, options: BenchOptions, work: Path | None = None) -> BenchReport:
    """Every part of the bench not in ``options.skip``, on ``config``'s packs and embedder."""
    unknown = options.skip - set(PARTS)
    if unknown:
        raise ConfigError(f"--skip: unknown part(s) {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")
    if "startup" not in options.skip:
        require_psutil()  # NOTE: without the bench extra this stops now, not after the other parts
    work = work or Path(tempfile.mkdtemp(prefix="bot-bench-"))
    report = BenchReport(machine(), options)
    started = time.perf_counter()
    if "engine" not in options.skip or "reference" not in options.skip:
        await _engine_and_reference(config, options, work, report)
    if "throughput" not in options.skip:
        from bot.bench.load import onebot_load

        for delay in (0.0, options.slow_model_s):
            report.throughput.append(
                await onebot_load(
                    config.characters_dir,
                    config.data_dir,
                    work / f"load-{delay:g}",
                    groups=options.slow_groups if delay else options.groups,
                    messages_per_group=options.group_messages,
                    model_delay_s=delay,
                    default_character=options.pack or config.characters.default,
                    embedding_model=config.embedding.model,
                )
            )
    if "startup" not in options.skip:
        template = _template(config, options)
        for count in options.packs:
            report.startup.extend(
                measure_startup(
                    template, work / "startup", packs=count, scenes=options.scenes, repeats=options.repeats
                )
            )
    report.seconds = time.perf_counter() - started
    return report


async def _engine_and_reference(
    config: BotConfig, options: BenchOptions, work: Path, report: BenchReport
) -> None:
    bench_config = config.model_copy(
        update={
            "storage": config.storage.model_copy(
                update={
                    "url": f"sqlite+aiosqlite:///{(work / 'engine.sqlite3').as_posix()}",
                    "data_dir": config.data_dir,
                }
            ),
            "groups": config.groups.model_copy(
                update={"replies_per_minute": 1_000_000, "user_replies_per_minute": 1_000_000}
            ),
            "budgets": config.budgets.model_copy(update={"chat_daily_tokens": 0, "user_daily_tokens": 0}),
        }
    )
    model = TimedModel(_instant_model())
    runtime = await Runtime.create(bench_config, model=model)
    try:
        await runtime.background.wait()
        pack_id = options.pack or config.characters.default
        pack = runtime.packs.get(pack_id)
        if pack is None:
            raise ConfigError(
                f"--pack: no character {pack_id!r} (have: {', '.join(p.id for p in runtime.packs)})"
            )
        messages = workload(options.messages, pack.settings.language)
        if "engine" not in options.skip:
            report.engine = await measure_engine(runtime, model, pack.id, messages)
        if "reference" not in options.skip:
            embedder = getattr(runtime.embedder, "inner", runtime.embedder)
            report.reference = measure_reference(pack, embedder, messages, work)
    finally:
        await runtime.aclose()


def _instant_model() -> ChatModel:
    return EchoChatModel()


def _template(config: BotConfig, options: BenchOptions) -> Any:
    from bot.engine.packs import load_packs

    packs = load_packs(config.characters_dir).packs
    wanted = options.pack or config.characters.default
    return next((pack for pack in packs if pack.id == wanted), packs[0])


def _row(label: str, *values: str) -> str:
    return f"{label:<36}" + "".join(f"{value:>10}" for value in values)


def format_report(report: BenchReport) -> str:
    """The table the command prints: median and p95 of each figure."""
    lines = [f"machine: {report.machine}; bench took {report.seconds:.0f} s", ""]
    reference = f"chatharuhi {VERSION}"
    if report.engine is not None or report.reference is not None:
        lines.append(_row("per message (model excluded)", "median", "p95"))
        for label, run in (("engine overhead, ms", report.engine), (f"{reference}, ms", report.reference)):
            if run is not None:
                lines.append(_row(label, f"{run.overhead.median:.1f}", f"{run.overhead.p95:.1f}"))
        for label, run in (
            ("engine prompt tokens", report.engine),
            (f"{reference} prompt tokens", report.reference),
        ):
            if run is not None:
                lines.append(_row(label, f"{run.tokens.median:.0f}", f"{run.tokens.p95:.0f}"))
        if report.engine is not None:
            parts = ", ".join(
                f"{part} {Percentiles.of([float(v) for v in values]).median:.0f}"
                for part, values in report.engine.parts.items()
            )
            lines.append(f"  engine prompt by part (median): {parts}")
        if report.ratio is not None and report.engine is not None and report.reference is not None:
            own = report.engine.without_embedding.median / report.reference.without_embedding.median
            lines.append(
                f"  engine / {reference} (median): {report.ratio:.2f} overall, "
                f"{own:.2f} less the embedding model"
            )
        if report.reference is not None:
            lines.append(f"  {reference} start (embedding every scene): {report.reference.start_s:.1f} s")
        lines.append("")
    if report.throughput:
        lines.append(_row("throughput (OneBot, one process)", "msg/s", "lat med", "lat p95"))
        for load in report.throughput:
            lines.append(
                _row(
                    f"{load.groups} groups, model {load.model_delay_s:g} s",
                    f"{load.per_second:.1f}",
                    f"{load.latency_ms.median:.0f}",
                    f"{load.latency_ms.p95:.0f}",
                )
                + (f"  ({load.errors} unanswered)" if load.errors else "")
            )
        lines.append("")
    if report.startup:
        lines.append(_row("start-up", "ready s", "indexed s", "RSS MB"))
        for result in report.startup:
            state = "cold" if result.cold else "warm"
            lines.append(
                _row(
                    f"{result.packs} packs x {result.scenes_per_pack} scenes, {state}",
                    f"{result.ready_s.median:.2f}",
                    f"{result.indexed_s.median:.2f}",
                    f"{result.rss_mb.median:.0f}",
                )
            )
        if (per_pack := report.memory_per_pack_mb) is not None:
            lines.append(f"  memory per {report.options.scenes}-scene pack (warm): {per_pack:.1f} MB")
    return "\n".join(lines)


def write_report(report: BenchReport, data_dir: Path) -> Path:
    folder = data_dir / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def main(config: BotConfig, args: argparse.Namespace) -> int:
    """Run the bench, print the table, write the JSON; the exit status."""
    if min(args.messages, args.groups, args.slow_groups, args.group_messages, args.scenes, args.repeats) < 1:
        raise ConfigError(
            "--messages, --groups, --slow-groups, --group-messages, --scenes and --repeats must be 1 or more"
        )
    options = BenchOptions(
        pack=args.pack,
        messages=args.messages,
        groups=args.groups,
        group_messages=args.group_messages,
        slow_model_s=args.slow_model,
        slow_groups=args.slow_groups,
        packs=parse_counts(args.packs),
        scenes=args.scenes,
        repeats=args.repeats,
        skip=parse_skip(args.skip),
    )
    report = asyncio.run(run_bench(config, options))
    print(format_report(report))  # noqa: T201 - the command's output
    print(f"\nfigures written to {write_report(report, config.data_dir)}")  # noqa: T201
    return 0
