"""``python -m bot db copy``: move an installation from one database to another without losing a row.

Both databases are first brought to the newest schema. Tables are copied in batches, each batch
its own transaction, so an interrupted copy keeps what it wrote; run it again and it goes on:
tables keyed by a number (``messages``) continue after the highest id already in the target,
the others are copied whole again, skipping the rows already there. At the end every table is
compared: row counts and an order-independent checksum of every row's values.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Table, func, select, text, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database
from storage.errors import StorageError
from storage.models import Base

DEFAULT_BATCH = 2_000
_MASK = (1 << 64) - 1

Progress = Callable[[str, int], None]
"""Told ``(table, rows written so far)`` after each batch."""


@dataclass(slots=True, frozen=True)
class TableCheck:
    table: str
    copied: int
    """Rows this run wrote."""
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def matches(self) -> bool:
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum


@dataclass(slots=True, frozen=True)
class CopyReport:
    tables: list[TableCheck]
    seconds: float

    @property
    def matches(self) -> bool:
        return all(check.matches for check in self.tables)

    @property
    def copied(self) -> int:
        return sum(check.copied for check in self.tables)


def tables() -> list[Table]:
    """The bot's tables, parents before children."""
    return list(Base.metadata.sorted_tables)


def _numbered(table: Table) -> bool:
    keys = list(table.primary_key.columns)
    return len(keys) == 1 and isinstance(keys[0].type, Integer)


def _canonical(value: object) -> str:
    if value is None:
        return "\x00"
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def row_hash(values: Sequence[object]) -> int:
    """A 64-bit hash of one row's values, the same whichever database they were read from."""
    digest = hashlib.blake2b("\x1f".join(_canonical(value) for value in values).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


async def table_checksum(database: Database, table: Table, batch: int = DEFAULT_BATCH) -> tuple[int, str]:
    """``(rows, checksum)``: the checksum adds the rows' hashes, so the order rows come in (which
    differs between databases that sort text differently) does not matter."""
    total, rows = 0, 0
    async for chunk in _batches(database, table, batch, after=None):
        for row in chunk:
            total = (total + row_hash(tuple(row))) & _MASK
        rows += len(chunk)
    return rows, f"{total:016x}"


async def _batches(database: Database, table: Table, size: int, after: tuple[Any, ...] | None) -> Any:
    """The table's rows in primary-key order, ``size`` at a time, after the key ``after``."""
    keys = list(table.primary_key.columns)
    while True:
        query = select(table).order_by(*keys).limit(size)
        if after is not None:
            query = query.where(tuple_(*keys) > tuple_(*after))
        async with database.engine.connect() as connection:
            chunk = (await connection.execute(query)).all()
        if not chunk:
            return
        yield chunk
        last = chunk[-1]._mapping
        after = tuple(last[key.name] for key in keys)


async def _resume_after(target: Database, table: Table) -> tuple[Any, ...] | None:
    if not _numbered(table):
        return None
    (key,) = table.primary_key.columns
    async with target.engine.connect() as connection:
        highest = await connection.scalar(select(func.max(key)))
    return None if highest is None else (highest,)


async def _copy_table(
    source: Database, target: Database, table: Table, batch: int, progress: Progress | None
) -> int:
    """Copy the rows of ``table`` the target lacks; how many were written."""
    insert = target.insert(table).on_conflict_do_nothing()
    before = await _count(target, table)
    read = 0
    try:
        async for chunk in _batches(source, table, batch, await _resume_after(target, table)):
            async with target.engine.begin() as connection:
                await connection.execute(insert, [dict(row._mapping) for row in chunk])
            read += len(chunk)
            if progress is not None:
                progress(table.name, read)
    except SQLAlchemyError as exc:
        raise StorageError(f"db copy: table {table.name}: {exc}") from exc
    if target.is_postgres and _numbered(table):
        (key,) = table.primary_key.columns
        async with target.engine.begin() as connection:
            await connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key.name}'), "
                    f"COALESCE(MAX({key.name}), 1), MAX({key.name}) IS NOT NULL) FROM {table.name}"
                )
            )
    return await _count(target, table) - before


async def _count(database: Database, table: Table) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def copy_database(
    source_url: str, target_url: str, *, batch: int = DEFAULT_BATCH, progress: Progress | None = None
) -> CopyReport:
    """Copy every row of ``source_url`` into ``target_url`` and check both agree; see the module."""
    if make_url(source_url) == make_url(target_url):
        raise StorageError("db copy: --from and --to are the same database")
    if batch < 1:
        raise StorageError("db copy: --batch must be 1 or more")
    started = time.perf_counter()
    source, target = Database(source_url), Database(target_url)
    try:
        await source.upgrade()
        await target.upgrade()
        copied = {table.name: await _copy_table(source, target, table, batch, progress) for table in tables()}
        checks = []
        for table in tables():
            source_rows, source_sum = await table_checksum(source, table, batch)
            target_rows, target_sum = await table_checksum(target, table, batch)
            checks.append(
                TableCheck(table.name, copied[table.name], source_rows, target_rows, source_sum, target_sum)
            )
    finally:
        await source.aclose()
        await target.aclose()
    return CopyReport(checks, time.perf_counter() - started)
