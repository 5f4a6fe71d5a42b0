"""SQLite through aiosqlite with one thread hop per statement.

aiosqlite runs every call on its connection's thread, and SQLAlchemy's adapter makes four calls per
statement (open a cursor, execute, fetch, close), each a round trip between the event loop and that
thread. On this project's two-core machines each round trip costs about as much as SQLite's own work,
and the GIL hand-offs in between stall the event loop: a third of its time under load went there. This
driver sends a statement, its rows and the cursor's facts in one call instead, and skips the commit
and the rollback when SQLite has no transaction open. Everything else
(connections, transactions, errors, the pool) is SQLAlchemy's ``sqlite+aiosqlite`` dialect, which
:class:`storage.db.Database` swaps for this one: configs keep naming ``sqlite+aiosqlite``.

NOTE: it reaches into aiosqlite's ``Connection._execute`` and ``_conn``, as SQLAlchemy's own adapter
does (its isolation-level setter); tests/storage/test_sqlite_driver.py checks them on the installed
version.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from threading import Thread
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

DRIVER = "aiosqlite_onehop"
"""The driver's name in SQLAlchemy's registry: ``sqlite+aiosqlite_onehop://``."""

Outcome = tuple[Any, list[Any], int, int | None]
"""What one statement gives back: the cursor's description, its rows, rowcount and lastrowid."""


def _run(connection: Any, operation: str, parameters: Any, many: bool) -> Outcome:
    """On aiosqlite's thread: one statement from cursor to close."""
    raw: sqlite3.Connection = connection._conn
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a finished statement's rows; nothing of it lives on aiosqlite's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._one_hop(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._one_hop(operation, seq_of_parameters, many=True)

    async def _one_hop(self, operation: Any, parameters: Any, *, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await self._connection._execute(
                _run, self._connection, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        return

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        raise NotImplementedError("SQLite statements have one result set")


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """Commits and rolls back only when SQLite has a transaction open: a unit that only read (SQLite
    begins on the first write) and the pool's reset after a commit cost no round trip."""

    __slots__ = ()
    _cursor_cls = OneHopCursor

    def _in_transaction(self) -> bool:
        # NOTE: read from the event loop's thread: sqlite3 checks no thread for this getter, and the
        # connection is idle (its session awaits each call it makes).
        raw: sqlite3.Connection | None = self._connection._connection
        return raw is not None and raw.in_transaction

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        creator = kw.pop("async_creator_fn", None)
        connection = creator(*arg, **kw) if creator else self.aiosqlite.connect(*arg, **kw)
        thread = connection if isinstance(connection, Thread) else getattr(connection, "_thread", None)
        if thread is not None:
            thread.daemon = True  # as SQLAlchemy's adapter: a forgotten connection never blocks exit
        return OneHopConnection(self, await_(connection))


class OneHopDialect(SQLiteDialect_aiosqlite):
    """``sqlite+aiosqlite`` with :class:`OneHopCursor`."""

    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:  # type: ignore[override]
        return OneHopDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER}", __name__, "OneHopDialect")
