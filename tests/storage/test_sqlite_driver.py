"""The SQLite driver: one round trip to aiosqlite's thread per statement, and otherwise the same as
SQLAlchemy's ``sqlite+aiosqlite`` (rows, rowcounts, inserted ids, errors, transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import AsyncAdaptedQueuePool

from storage import Database
from storage.models import MessageClaim, table_of
from storage.sqlite_driver import DRIVER


@contextmanager
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls handed to aiosqlite's thread while the block runs, by name."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(aiosqlite.Connection, "_execute", counted)
        yield calls


async def test_a_config_naming_aiosqlite_gets_the_one_hop_driver(database: Database) -> None:
    assert database.url.startswith("sqlite+aiosqlite:")
    assert database.engine.dialect.driver == "aiosqlite"
    assert database.engine.url.drivername == f"sqlite+{DRIVER}"


async def test_each_statement_is_one_round_trip_with_its_rows_and_counts(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = table_of(MessageClaim)
    row = {"platform": "onebot", "chat_id": "1", "claimed_by": "p"}
    async with database.engine.connect() as connection:
        await connection.execute(text("select 1"))  # the connection and its transaction are open
        with hops(monkeypatch) as calls:
            inserted = await connection.execute(
                insert(claims).returning(claims.c.message_id), {**row, "message_id": "m1"}
            )
            assert inserted.scalar_one() == "m1"
            many = await connection.execute(insert(claims), [{**row, "message_id": f"m{n}"} for n in (2, 3)])
            assert many.rowcount == 2
            changed = await connection.execute(
                update(claims).where(claims.c.message_id != "m1").values(claimed_by="q")
            )
            assert changed.rowcount == 2
            found = await connection.execute(select(claims.c.message_id).order_by(claims.c.message_id))
            assert found.scalars().all() == ["m1", "m2", "m3"]
        assert calls == ["_run"] * 4, calls
        await connection.rollback()
        assert (await connection.execute(select(claims.c.message_id))).all() == []


async def test_errors_are_sqlalchemys_and_the_transaction_is_intact(database: Database) -> None:
    claims = table_of(MessageClaim)
    row = {"platform": "onebot", "chat_id": "1", "message_id": "m1", "claimed_by": "p"}
    async with database.engine.begin() as connection:
        await connection.execute(insert(claims), row)
    async with database.engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(insert(claims), row)
        await connection.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await connection.execute(text("select * from nowhere"))
        await connection.rollback()
        assert (await connection.execute(select(claims.c.claimed_by))).scalar_one() == "p"


async def test_a_unit_that_only_reads_costs_no_commit_and_a_write_commits_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = table_of(MessageClaim)
    with hops(monkeypatch) as calls:
        async with database.sessions() as session:
            await session.execute(select(claims.c.message_id))
    assert calls == ["_run"], calls
    with hops(monkeypatch) as calls:
        async with database.sessions.begin() as session:
            row = {"platform": "onebot", "chat_id": "1", "message_id": "m1", "claimed_by": "p"}
            await session.execute(insert(claims), row)
    assert calls == ["_run", "commit"], calls
    async with database.sessions() as session:
        assert (await session.execute(select(claims.c.claimed_by))).scalar_one() == "p"


async def test_writers_queue_for_the_one_connection_instead_of_sleeping_in_sqlite(database: Database) -> None:
    """Units that write at once take turns on the file's one connection; none fails as locked."""
    pool = database.engine.pool
    assert isinstance(pool, AsyncAdaptedQueuePool)
    assert pool.size() == 1
    claims = table_of(MessageClaim)
    order: list[str] = []

    async def unit(name: str) -> None:
        async with database.sessions.begin() as session:
            row = {"platform": "onebot", "chat_id": "1", "message_id": name, "claimed_by": "p"}
            await session.execute(insert(claims), row)
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    await asyncio.gather(*(unit(f"m{number}") for number in range(3)))
    assert order == ["m0 in", "m0 out", "m1 in", "m1 out", "m2 in", "m2 out"]
    async with database.sessions() as session:
        assert len((await session.execute(select(claims.c.message_id))).all()) == 3
