"""Bot processes sharing one PostgreSQL database under load, and ``db copy`` of a big installation.

The load is :func:`bot.bench.cluster.cluster_load`: every group sits in every process's account, each
sends its messages one after another, a model answers after 50–500 ms. Printed per process count:
messages per second, latency from a message to its answer (median, p95), and what the database
holds afterwards (lost, duplicated, groups out of order). Then ``--copy-messages`` messages are
written to a SQLite file and copied into a fresh PostgreSQL database with ``db copy``::

    PYTHONPATH=. .venv/bin/python scripts/bench_cluster.py \\
        --server postgresql+asyncpg://postgres@127.0.0.1:5432 --processes 1,2 --groups 200 --messages 20

``--server`` is a PostgreSQL server whose user may create databases; each run gets its own.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.bench.cluster import cluster_load
from storage import Database
from storage.models import Message
from storage.transfer import copy_database

ROOT = Path(__file__).resolve().parents[1]


async def fresh_database(server: str) -> str:
    name = f"bench_{secrets.token_hex(4)}"
    engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    return f"{server}/{name}"


async def fill_sqlite(path: Path, messages: int) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    database = Database(url)
    await database.upgrade()
    now = datetime.now(UTC)
    rows = [
        {
            "platform": "onebot",
            "chat_id": str(100 + number % 200),
            "character_id": "orla",
            "role": "user" if number % 2 == 0 else "character",
            "user_id": str(5000 + number % 50),
            "user_name": f"member{number % 50}",
            "text": f"message {number}: the ferry was late again and the lamp needs oil",
            "platform_message_id": str(number),
            "created_at": now,
        }
        for number in range(messages)
    ]
    async with database.engine.begin() as connection:
        for start in range(0, messages, 10_000):
            await connection.execute(insert(Message), rows[start : start + 10_000])
    await database.aclose()
    return url


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", required=True, help="postgresql+asyncpg://USER@HOST:PORT (no database)")
    parser.add_argument("--processes", default="1,2", help="process counts to run (1,2)")
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20, help="messages per group (20)")
    parser.add_argument("--copy-messages", type=int, default=100_000, help="messages for db copy (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as work:
        for count in (int(part) for part in args.processes.split(",")):
            result = await cluster_load(
                await fresh_database(args.server),
                ROOT / "characters",
                Path(work) / f"p{count}",
                processes=count,
                groups=args.groups,
                per_group=args.messages,
            )
            print(
                f"{count} process(es), {result.groups} groups x {args.messages}: "
                f"{result.per_second:.1f} msg/s, latency median {result.latency_ms.median:.0f} ms, "
                f"p95 {result.latency_ms.p95:.0f} ms; answered {result.answered}/{result.sent}, "
                f"stored {result.stored}, lost {result.lost}, duplicated {result.duplicated}, "
                f"groups out of order {result.out_of_order}"
            )
        if args.copy_messages:
            source = await fill_sqlite(Path(work) / "big.sqlite3", args.copy_messages)
            started = time.perf_counter()
            report = await copy_database(source, await fresh_database(args.server))
            print(
                f"db copy: {report.copied:,} rows in {time.perf_counter() - started:.1f} s "
                f"({'all tables match' if report.matches else 'MISMATCH'})"
            )


if __name__ == "__main__":
    asyncio.run(main())
