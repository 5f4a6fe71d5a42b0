"""Several bot processes on one shared database, under load: nothing lost, nothing doubled.

Each process is ``python -m bot`` with its own OneBot account (a reverse WebSocket), all on the same
``[storage] url``. Every group has every account in it, so each message reaches every process with
the same message id, as when several QQ accounts sit in one group. A model server answers after a
random 50–500 ms. Each group sends its messages one after another, the next once the previous was
answered (a closed loop per group, all groups at once). Afterwards the database is read back: every
message stored exactly once, every group's history in the order it was said, one answer each.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bot.bench.load import InstantModelServer, OneBotPeer, bench_config, free_port, running_bot
from bot.bench.stats import Percentiles
from storage import Database
from storage.models import Message

GROUP_BASE = 700_000


@dataclass(slots=True, frozen=True)
class ClusterResult:
    processes: int
    groups: int
    sent: int
    answered: int
    """Messages that got an answer within the time limit."""
    seconds: float
    per_second: float
    latency_ms: Percentiles
    """From sending a message (to every account) to the first answer in its group."""
    stored: int
    """User messages in the database."""
    lost: int
    """Messages sent but not in the database."""
    duplicated: int
    """Messages stored more than once, plus answers posted more than once."""
    out_of_order: int
    """Groups whose stored history is not in the order the messages were said."""


def message_text(group: int, number: int) -> str:
    return f"g{group} m{number:03d}: what does the lamp show tonight?"


async def cluster_load(
    database_url: str,
    characters_dir: Path,
    work_dir: Path,
    *,
    processes: int = 2,
    groups: int = 200,
    per_group: int = 20,
    model_delay_s: tuple[float, float] = (0.05, 0.5),
    embedding_model: str = "hashing",
    timeout_s: float = 120.0,
) -> ClusterResult:
    """Run the load described in the module docstring against ``processes`` fresh bot processes."""
    answers: Counter[int] = Counter()
    waiting: dict[int, asyncio.Future[float]] = {}

    def heard(group: int, _text: str) -> None:
        answers[group] += 1
        future = waiting.pop(group, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    async with InstantModelServer(*model_delay_s) as model, contextlib.AsyncExitStack() as stack:
        peers = []
        for number in range(processes):
            port, token = free_port(), secrets.token_hex(8)
            folder = work_dir / f"process-{number}"
            config = bench_config(
                folder,
                characters_dir,
                folder / "data",
                port=port,
                token=token,
                model_url=model.base_url,
                model_delay_s=model_delay_s[1],
                default_character=None,
                embedding_model=embedding_model,
                screenshots=False,
                database_url=database_url,
            )
            socket = await stack.enter_async_context(running_bot(config, folder, port, token, timeout_s))
            peer = OneBotPeer(socket, heard)
            stack.push_async_callback(peer.aclose)
            peers.append(peer)

        latencies: list[float] = []

        async def group_loop(group: int) -> None:
            for number in range(per_group):
                answered = asyncio.get_running_loop().create_future()
                waiting[group] = answered
                sent = time.perf_counter()
                text, message_id = message_text(group, number), group * 1_000 + number
                for peer in peers:
                    await peer.say(group, 5_000 + group, text, message_id=message_id)
                try:
                    latencies.append((await asyncio.wait_for(answered, timeout_s) - sent) * 1000)
                except TimeoutError:
                    waiting.pop(group, None)

        started = time.perf_counter()
        await asyncio.gather(*(group_loop(GROUP_BASE + index) for index in range(groups)))
        seconds = time.perf_counter() - started
        await asyncio.sleep(1.0)  # an answer posted twice would arrive now
    sent = groups * per_group
    stored, lost, doubled, out_of_order = await _read_back(database_url, groups, per_group)
    doubled += sum(max(count - per_group, 0) for count in answers.values())
    return ClusterResult(
        processes=processes,
        groups=groups,
        sent=sent,
        answered=len(latencies),
        seconds=seconds,
        per_second=len(latencies) / seconds if seconds else 0.0,
        latency_ms=Percentiles.of(latencies or [float("nan")]),
        stored=stored,
        lost=lost,
        duplicated=doubled,
        out_of_order=out_of_order,
    )


async def _read_back(database_url: str, groups: int, per_group: int) -> tuple[int, int, int, int]:
    """``(stored, lost, duplicated, groups out of order)`` from the database's user messages."""
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            rows = (
                await session.execute(
                    select(Message.chat_id, Message.text).where(Message.role == "user").order_by(Message.id)
                )
            ).all()
    finally:
        await database.aclose()
    by_group: dict[int, list[str]] = {}
    for chat_id, text in rows:
        by_group.setdefault(int(chat_id), []).append(text)
    lost = doubled = out_of_order = 0
    for index in range(groups):
        group = GROUP_BASE + index
        said = [message_text(group, number) for number in range(per_group)]
        kept = by_group.get(group, [])
        counts = Counter(kept)
        lost += sum(1 for text in said if counts[text] == 0)
        doubled += sum(count - 1 for count in counts.values() if count > 1)
        if list(dict.fromkeys(kept)) != [text for text in said if counts[text]]:
            out_of_order += 1
    return len(rows), lost, doubled, out_of_order
