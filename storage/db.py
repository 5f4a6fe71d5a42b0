"""The database handle: engine, sessions, SQLite tuning, migrations, and the chat locks.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer and a short write
burst from many groups waits instead of failing with "database is locked"; it serves one bot
process (:meth:`Database.hold_alone` refuses a second). PostgreSQL is shared by several bot
processes: :meth:`Database.chat_lock` takes a chat's advisory lock, so two processes never handle
messages of one chat at the same time.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import aiosqlite
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_driver
from storage.errors import StorageError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
STORAGE_FAILURES = (SQLAlchemyError, StorageError)
"""What a read or write raises when the database is unavailable."""


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config for ``storage/migrations`` against ``url``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def process_name() -> str:
    """``host:pid:random``: names one bot runtime in claims and catalog changes (unique even for two
    runtimes in one process, as tests run them)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def lock_number(name: str) -> int:
    """A stable signed 64-bit number for ``name``: the key of a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL session advisory locks, all of one process's held on one connection.

    A session may hold any number of advisory locks, so a process answering a hundred groups needs
    one connection for their locks, not a hundred. Taking a lock is a non-blocking try, repeated every
    ``poll_s`` while another process holds it (which only happens when two processes got messages
    of the same group at once). The server drops the locks when the connection or the process dies.
    Callers hold each name once at a time in the process (the router's per-chat locks see to that):
    a session takes its own advisory lock again without waiting.
    """

    def __init__(self, engine: AsyncEngine, poll_s: float = 0.05) -> None:
        self._engine = engine
        self._poll_s = poll_s
        self._connection: AsyncConnection | None = None
        self._turn = asyncio.Lock()

    async def _ask(self, query: str, number: int) -> bool:
        async with self._turn:
            if self._connection is None:
                self._connection = await self._engine.connect()
            try:
                result = await self._connection.scalar(text(query), {"number": number})
                await self._connection.commit()
            except BaseException:
                # A broken connection took its locks with it; the next call opens a new one.
                connection, self._connection = self._connection, None
                await connection.invalidate()
                raise
            return bool(result)

    @asynccontextmanager
    async def hold(self, number: int) -> AsyncIterator[None]:
        while not await self._ask("SELECT pg_try_advisory_lock(:number)", number):  # noqa: ASYNC110 - held by another process
            await asyncio.sleep(self._poll_s)
        try:
            yield
        finally:
            if not await self._ask("SELECT pg_advisory_unlock(:number)", number):
                log.warning("advisory lock %d was already gone (the lock connection was lost)", number)

    async def aclose(self) -> None:
        async with self._turn:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None


class Database:
    """Owns the async engine and hands out sessions.

    On PostgreSQL ``pool_size`` connections (and as many more at peaks) serve reads and writes, and
    one more holds the process's chat locks (:class:`AdvisoryLocks`).
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        self.is_sqlite = backend == "sqlite"
        self.is_postgres = backend == "postgresql"
        if backend not in ("sqlite", "postgresql"):
            raise StorageError(
                f"[storage] url: {backend!r} is not supported; use sqlite+aiosqlite:///FILE "
                "or postgresql+asyncpg://USER:PASSWORD@HOST/DATABASE"
            )
        self.path = (
            Path(parsed.database)
            if self.is_sqlite and parsed.database not in (None, "", ":memory:")
            else None
        )
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any]
        if self.is_sqlite:
            # NOTE: one connection: SQLite has one writer at a time, and with a pool of several, the
            # writers waiting for each other slept in SQLite's busy handler (up to 100 ms a try) while
            # holding their connections; queued for the one connection, they wait without sleeping.
            # A unit of work never opens a second session while it holds one.
            options = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
            if self.path is not None:  # an in-memory database has its own one-connection pool
                options |= {"pool_size": 1, "max_overflow": 0}
        else:
            options = {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True}
        engine_url = parsed
        if parsed.drivername == "sqlite+aiosqlite":
            engine_url = parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        try:
            self.engine: AsyncEngine = create_async_engine(engine_url, echo=echo, **options)
            self._locks = None if self.is_sqlite else AdvisoryLocks(self.engine)
        except (ImportError, SQLAlchemyError) as exc:
            raise StorageError(f"[storage] url {self._safe_url()}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self._alone: IO[str] | None = None
        self._keeper: aiosqlite.Connection | None = None
        """A connection to the SQLite file held open from the start: if the file is deleted while the
        bot runs, its content is still read through this one and written back (:meth:`restore`)."""
        self._inode: int | None = None

    def insert(self, table: Any) -> Any:
        """An INSERT for this database's dialect, which has ``on_conflict_do_nothing`` and
        ``on_conflict_do_update`` (SQLite and PostgreSQL spell upserts alike)."""
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    def hold_alone(self) -> None:
        """Make sure this is the only bot process on this SQLite file (the bot calls this at start).

        SQLite has no locks that span a chat's whole answer, so two processes on one file could
        interleave a chat's messages; a second process is refused with what to do instead. The lock
        dies with the process, so a killed bot never leaves it behind.
        """
        if self.path is None or self._alone is not None:
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StorageError(
                f"{self.path} is in use by another bot process ({holder}). SQLite serves one bot "
                "process: give each process its own [storage] url, or point them all at one "
                "PostgreSQL database (postgresql+asyncpg://…) to share it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._alone = handle

    @property
    def alone(self) -> bool:
        """Whether this process holds the database alone (:meth:`hold_alone` on SQLite)."""
        return self._alone is not None

    @asynccontextmanager
    async def chat_lock(self, name: str) -> AsyncIterator[None]:
        """Hold the lock named ``name`` across every process on this database while the block runs.

        On PostgreSQL this is a session advisory lock (:class:`AdvisoryLocks`), released at the end
        of the block, or by the server when the process dies. SQLite has one process
        (:meth:`hold_alone`), whose own locks are enough.
        """
        if self._locks is None:
            yield
            return
        async with self._locks.hold(lock_number(name)):
            yield

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration."""

        def run(connection: Connection) -> None:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        try:
            async with self.engine.begin() as connection:
                await connection.run_sync(run)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot open or migrate the database {self._safe_url()}: {exc}") from exc

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    async def keep_open(self) -> None:
        """Hold a connection to the SQLite file for :meth:`restore` (the bot calls this at start)."""
        if self.path is None or self._keeper is not None:
            return
        self._keeper = await aiosqlite.connect(self.path)
        # NOTE: a first read opens the write-ahead log too; SQLite will not open it for a deleted file.
        async with self._keeper.execute("SELECT count(*) FROM sqlite_master") as cursor:
            await cursor.fetchall()
        self._inode = os.stat(self.path).st_ino

    async def problem(self) -> str | None:
        """What is wrong with the database now (gone, replaced, unreachable, read-only), or ``None``.

        It writes to find out (SQLite's ``user_version``, set to what it is), so a database that can
        be read but not written counts as a problem.
        """
        if self._inode is not None and self.path is not None:
            try:
                inode = os.stat(self.path).st_ino
            except FileNotFoundError:
                return f"the database file {self.path} was deleted"
            if inode != self._inode:
                return f"the database file {self.path} was replaced by another file"
        try:
            async with self.engine.begin() as connection:
                if self.is_sqlite:
                    version = (await connection.exec_driver_sql("PRAGMA user_version")).scalar_one()
                    await connection.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
                else:
                    await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            return f"the database cannot be written: {exc}"
        return None

    async def restore(self) -> bool:
        """Write the SQLite file back from the connection held since the start after it was deleted,
        and reconnect to it; ``False`` when there is nothing to restore from, or another file took its
        place (an operator's, left alone)."""
        if self._keeper is None or self.path is None or self.path.exists():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(self.path.name + ".restoring")
        staging.unlink(missing_ok=True)
        async with aiosqlite.connect(staging) as target:
            await self._keeper.backup(target)
        await self.engine.dispose()
        await self._keeper.close()
        self._keeper = None
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        staging.replace(self.path)
        await self.keep_open()
        return True

    async def aclose(self) -> None:
        if self._locks is not None:
            await self._locks.aclose()
        if self._keeper is not None:
            await self._keeper.close()
            self._keeper = None
        await self.engine.dispose()
        if self._alone is not None:
            self._alone.close()
            self._alone = None
