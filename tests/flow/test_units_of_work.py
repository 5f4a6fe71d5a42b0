"""How much database work one message costs: statements and sessions per message, counted with
SQLAlchemy's events on SQLite and on PostgreSQL. A change that makes a message cost more fails here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event

from bot.router import Router
from storage import Database
from tests.messages import group_message

pytestmark = pytest.mark.both_databases


@dataclass
class Work:
    statements: int = 0
    sessions: int = 0
    sent: list[str] = field(default_factory=list)


def lock(database: Database) -> int:
    """What the chat's lock across processes costs: PostgreSQL's advisory lock and its release."""
    return 2 if database.is_postgres else 0


@contextmanager
def counted(database: Database) -> Iterator[Work]:
    """Count the statements sent and the connections checked out while the block runs (the statements'
    first words are kept, to show in a failure)."""
    work = Work()
    engine = database.engine.sync_engine

    def statement(_connection: object, _cursor: object, sql: str, *_args: object) -> None:
        work.statements += 1
        work.sent.append(sql.split(None, 3)[:3].__str__())

    def checkout(*_args: object) -> None:
        work.sessions += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    try:
        yield work
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)


async def warm(router: Router, count: int = 25) -> None:
    """A chat with history enough for recall (from a superuser, whom no limit holds), a member who
    spoke before, and the chat's state in the caches."""
    for number in range(count):
        await router.handle(group_message(f"tell me about the storm, part {number}", to_me=True, user="1"))
    await router.handle(group_message("hello, keeper", to_me=True, user="42"))


async def test_a_replied_message_reads_in_one_session_and_writes_in_one(
    router: Router, database: Database
) -> None:
    """Before the rebuild: 13 statements in 9 sessions on SQLite. Now: the claim, the message, its
    history (recall candidates included) and the governor's one read in one session (the chat's state,
    the member's name and the summary come from the caches); the reply's line, its delivery, its
    usage and its trace (one INSERT, :mod:`bot.traces`) in another."""
    await warm(router)
    with counted(database) as work:
        (reply,) = await router.handle(group_message("is the lamp lit?", to_me=True, user="42"))
    assert reply.text == "Orla Finch heard Pip#42: is the lamp lit?", "two members called Pip"
    assert work.sessions == 2, work
    assert work.statements <= 8 + lock(database), work
    assert sum("traces" in sql for sql in work.sent) == 1, work


async def test_no_trace_costs_nothing_when_none_are_kept(router: Router, database: Database) -> None:
    """``[memory] trace_days = 0``: the reply's unit of work is what it was before traces."""
    memory = router.config.memory.model_copy(update={"trace_days": 0})
    router.answerer.config = router.config.model_copy(update={"memory": memory})
    await warm(router, 2)
    with counted(database) as work:
        await router.handle(group_message("is the lamp lit?", to_me=True, user="42"))
    assert work.statements <= 7 + lock(database), work
    assert not any("traces" in sql for sql in work.sent), work


async def test_room_talk_costs_one_session(router: Router, database: Database) -> None:
    """Before: 7 statements in 4 sessions. Now the claim, the message and the room's trim."""
    await warm(router, 2)
    with counted(database) as work:
        assert await router.handle(group_message("lunch anyone?", user="42")) == []
    assert work.sessions == 1, work
    assert work.statements <= 4 + lock(database), work


async def test_a_command_reads_in_one_session_and_records_its_reply_in_another(
    router: Router, database: Database
) -> None:
    await warm(router, 2)
    with counted(database) as work:
        (reply,) = await router.handle(group_message("/who", user="42"))
    assert reply.text.startswith("Active character: orla")
    assert work.sessions == 2, work
    assert work.statements <= 4 + lock(database), work
