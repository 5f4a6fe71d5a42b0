"""The options of ``python -m bot bench``, kept apart so the CLI builds its parser without importing
the bench's heavy parts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import ConfigError

PARTS = ("engine", "reference", "throughput", "startup")


@dataclass(slots=True, frozen=True)
class BenchOptions:
    pack: str | None = None
    """The pack the engine and the reference play (default: ``[characters] default``)."""
    messages: int = 200
    groups: int = 100
    group_messages: int = 3
    slow_model_s: float = 2.0
    slow_groups: int = 300
    """Groups of the slow model's run: a closed loop carries at most ``groups / slow_model_s``
    messages a second, so 100 groups could never show more than 50 with a 2 s model."""
    packs: tuple[int, ...] = (2, 10, 30)
    scenes: int = 100
    repeats: int = 3
    skip: frozenset[str] = frozenset()


def parse_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--packs: {text!r} is not a comma-separated list of numbers, e.g. 2,10,30"
        ) from None
    if not counts or min(counts) < 1:
        raise ConfigError(f"--packs: {text!r} must name at least one count of 1 or more")
    return counts


def parse_skip(values: Sequence[str]) -> frozenset[str]:
    return frozenset(part.strip() for value in values for part in value.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m bot bench``."""
    parser.add_argument(
        "--pack", metavar="ID", help="the character both implementations play (default: [characters] default)"
    )
    parser.add_argument(
        "--messages", metavar="N", type=int, default=200, help="messages per implementation (200)"
    )
    parser.add_argument("--groups", metavar="N", type=int, default=100, help="groups sending at once (100)")
    parser.add_argument("--group-messages", metavar="N", type=int, default=3, help="messages per group (3)")
    parser.add_argument(
        "--slow-model", metavar="SECONDS", type=float, default=2.0, help="the slow model's time per reply (2)"
    )
    parser.add_argument(
        "--slow-groups", metavar="N", type=int, default=300, help="groups sending to the slow model (300)"
    )
    parser.add_argument(
        "--packs", metavar="N,N", default="2,10,30", help="pack counts for start-up (2,10,30)"
    )
    parser.add_argument(
        "--scenes", metavar="N", type=int, default=100, help="scenes per generated pack (100)"
    )
    parser.add_argument("--repeats", metavar="N", type=int, default=3, help="warm starts per pack count (3)")
    parser.add_argument(
        "--skip", metavar="PART", action="append", default=[], help=f"leave out a part: {', '.join(PARTS)}"
    )
