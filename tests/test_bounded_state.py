"""State kept per chat and per member stays bounded: 100,000 distinct members, each in a chat of
their own, go through the governor, the screenshot cooldown and the send queue; no map outgrows its
capacity, and memory stays flat once they are full (tracing every allocation makes members about four
times slower: it is on for the last 30,000, and the growth counted over the last 15,000, after every
entry of the maps has been replaced while traced)."""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.config import SendingConfig, parse_config
from bot.engine.packs import load_pack
from bot.engine.prompt import TokenCounter
from bot.flow.cooldown import ChatCooldown
from bot.governor import LATER_CAPACITY, Governor
from bot.messages import ChatKey, Incoming, Reply, Sender
from bot.sending import SendQueue
from storage.limits import Pace
from tests.packs import write_pack

MEMBERS = 100_000
TRACED_FROM = 70_000
"""Members after which memory is traced (every map is full after the first 10,000)."""
CHECKPOINT = 85_000
"""Members after which every entry left in a map was made while traced: growth counts from here."""
GROWTH_LIMIT = 128 << 10
"""128 KiB over 15,000 members: a map keeping 9 bytes per member would pass it."""


class AlwaysFull:
    """The governor's database view of members who are all over their limit, told already (no
    database: this measures the process's own state)."""

    async def pace(self, _key: object, user_id: str, **_: Any) -> Pace:
        return Pace(0, None, 15, datetime.now(UTC), told={(user_id, "slow_down"): "2026-12-02"})

    async def tell(self, *_: Any, **__: Any) -> None:
        raise AssertionError("told already")

    async def withdraw(self, *_: Any, **__: Any) -> None:
        raise AssertionError("never answered")


class Ticks:
    """A clock that moves a millisecond each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


async def nothing() -> None:
    """A put-off answer (never due within the test)."""


async def test_a_hundred_thousand_members_leave_memory_flat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.governor")  # each answer given up is logged
    config = parse_config({}, source=tmp_path / "bot.toml")
    pack = load_pack(write_pack(tmp_path / "characters"))
    governor = Governor(config, SimpleNamespace(limits=AlwaysFull()), TokenCounter.default())  # type: ignore[arg-type]
    cooldown = ChatCooldown(120, clock=Ticks())
    posted = 0

    async def post(_key: ChatKey, _reply: Reply) -> None:
        nonlocal posted
        posted += 1

    queue = SendQueue(post, SendingConfig(min_gap_s=0))
    largest = {"later": 0, "cooldown": 0}

    async def members(first: int, last: int) -> None:
        for number in range(first, last):
            incoming = Incoming("onebot", "group", f"g{number}", Sender(f"u{number}", "m"), "hi", True, "1")
            decision = await governor.decide(incoming, pack, again=nothing)
            assert decision.verdict == "later"
            if cooldown.ready(incoming.key):
                cooldown.used(incoming.key)
            queue.post_later(incoming.key, Reply("Aye."))
            if number % 1000 == 999:
                await queue.join()
                await asyncio.sleep(0)  # the event loop's turn (it drops cancelled timers then)
                largest["later"] = max(largest["later"], len(governor.later))
                largest["cooldown"] = max(largest["cooldown"], len(cooldown))

    try:
        await members(0, TRACED_FROM)
        gc.collect()
        tracemalloc.start()
        await members(TRACED_FROM, CHECKPOINT)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
        await members(CHECKPOINT, MEMBERS)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await governor.aclose()
        await queue.aclose()

    growth = after - held
    print(
        f"\n{MEMBERS:,} members: {held / 2**20:.2f} MiB held after {CHECKPOINT:,}, {after / 2**20:.2f} MiB "
        f"after {MEMBERS:,} (growth {growth / 1024:+.1f} KiB; peak {peak / 2**20:.2f} MiB); "
        f"largest put-off answers {largest['later']:,} (capacity {LATER_CAPACITY:,}), "
        f"cooldown {largest['cooldown']:,} (capacity {cooldown.capacity:,}), posted {posted:,}"
    )
    assert posted == MEMBERS
    assert queue.pending == 0
    assert largest["later"] == LATER_CAPACITY, "the put-off answers are capped"
    assert largest["cooldown"] <= cooldown.capacity
    assert growth < GROWTH_LIMIT
