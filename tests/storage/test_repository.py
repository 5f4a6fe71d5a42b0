from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.config import BotConfig
from bot.messages import ChatKey
from storage import Database, Repository
from storage.db import alembic_config
from storage.models import Base

pytestmark = pytest.mark.both_databases


async def test_state_and_history_are_keyed_by_platform_and_chat(repository: Repository) -> None:
    qq, discord = ChatKey("onebot", "7"), ChatKey("discord", "7")
    await repository.chats.set_active_character(qq, "xiaoman")
    assert (await repository.chats.state(qq)).active_character == "xiaoman"
    assert (await repository.chats.state(discord)).active_character is None
    await repository.messages.add(qq, role="user", character_id="orla", user_id="1", user_name="A", text="qq")
    await repository.messages.add(
        discord, role="user", character_id="orla", user_id="1", user_name="A", text="dc"
    )
    assert [m.text for m in await repository.messages.recent(qq, "orla", limit=5)] == ["qq"]


async def test_history_limit_keeps_the_newest_in_order(repository: Repository) -> None:
    key = ChatKey("onebot", "1")
    for i in range(5):
        await repository.messages.add(
            key, role="user", character_id="orla", user_id="1", user_name="A", text=str(i)
        )
    assert [m.text for m in await repository.messages.recent(key, "orla", limit=3)] == ["2", "3", "4"]


async def test_memory_survives_reopening_the_file(config: BotConfig) -> None:
    key = ChatKey("onebot", "1")
    first = Database(config.database_url)
    await first.upgrade()
    await Repository(first).messages.add(
        key, role="user", character_id="orla", user_id="1", user_name="A", text="x"
    )
    await first.aclose()
    second = Database(config.database_url)
    await second.upgrade()
    assert [m.text for m in await Repository(second).messages.recent(key, "orla", limit=5)] == ["x"]
    await second.aclose()


async def test_sqlite_runs_in_wal_mode(config: BotConfig) -> None:
    database = Database(config.database_url)
    await database.upgrade()
    await database.aclose()
    path = Path(config.database_url.removeprefix("sqlite+aiosqlite:///"))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert version == ScriptDirectory.from_config(alembic_config(config.database_url)).get_current_head()


async def test_the_migrations_build_exactly_the_tables_the_models_declare(database: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
