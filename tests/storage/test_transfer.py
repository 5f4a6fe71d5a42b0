"""``db copy``: a SQLite installation moved to PostgreSQL, every row accounted for, resumable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import BotConfig
from bot.errors import StorageError
from bot.messages import ChatKey
from storage import Database, Repository
from storage.transfer import copy_database, table_checksum, tables

GROUPS = (ChatKey("onebot", "100"), ChatKey("discord", "200"))
MESSAGES_PER_GROUP = 130
BATCH = 50


class Interrupted(Exception):
    """Stands in for the operator pressing Ctrl-C (or the machine going down) during a copy."""


@pytest.fixture
async def installation(config: BotConfig) -> str:
    """A SQLite database with rows in every table, as a bot that ran a while leaves it."""
    database = Database(config.database_url)
    await database.upgrade()
    repository = Repository(database)
    for key in GROUPS:
        await repository.chats.set_active_character(key, "xiaoman")
        await repository.chats.set_character_disabled(key, "orla", True)
        await repository.chats.grant_admin(key, "7", granted_by="1")
        await repository.chats.participant_name(key, "42", "Pip")
        await repository.greetings.save(key, at="08:30", timezone="Asia/Shanghai", created_by="7")
        await repository.claims.claim(key, "m-1", by="host:1")
        for number in range(MESSAGES_PER_GROUP):
            await repository.messages.add(
                key,
                role="user",
                character_id="xiaoman",
                user_id="42",
                user_name="Pip",
                text=f"第{number}句 line",
            )
        await repository.summaries.save(key, "xiaoman", "Pip likes tea.", upto_id=10)
    await repository.catalog.record("xiaoman", "serve", origin="host:1")
    await database.aclose()
    return config.database_url


async def _history(url: str, key: ChatKey) -> list[tuple[int, str]]:
    database = Database(url)
    try:
        messages = await Repository(database).messages.recent(key, "xiaoman", limit=1_000)
        return [(message.id, message.text) for message in messages]
    finally:
        await database.aclose()


async def test_every_row_reaches_postgresql_and_the_bot_goes_on_there(
    installation: str, postgres_url: str
) -> None:
    report = await copy_database(installation, postgres_url, batch=BATCH)
    assert report.matches, report.tables
    counts = {check.table: check.target_rows for check in report.tables}
    assert counts["messages"] == len(GROUPS) * MESSAGES_PER_GROUP
    assert all(counts[name] == len(GROUPS) for name in ("chats", "greetings", "participants", "summaries"))
    for key in GROUPS:
        assert await _history(postgres_url, key) == await _history(installation, key)

    moved = Database(postgres_url)
    try:
        new_id = await Repository(moved).messages.add(
            GROUPS[0],
            role="user",
            character_id="xiaoman",
            user_id="42",
            user_name="Pip",
            text="after the move",
        )
        assert (await Repository(moved).chats.state(GROUPS[0])).active_character == "xiaoman"
    finally:
        await moved.aclose()
    assert new_id == len(GROUPS) * MESSAGES_PER_GROUP + 1, "new messages continue after the copied ids"


async def test_an_interrupted_copy_goes_on_where_it_stopped_without_duplicates(
    installation: str, postgres_url: str
) -> None:
    def stop_midway(table: str, rows: int) -> None:
        if table == "messages" and rows >= 3 * BATCH:
            raise Interrupted

    with pytest.raises(Interrupted):
        await copy_database(installation, postgres_url, batch=BATCH, progress=stop_midway)
    partial = Database(postgres_url)
    try:
        messages = next(table for table in tables() if table.name == "messages")
        rows_after_interrupt, _ = await table_checksum(partial, messages)
    finally:
        await partial.aclose()
    assert rows_after_interrupt == 3 * BATCH, "the batches written before the interruption are kept"

    report = await copy_database(installation, postgres_url, batch=BATCH)
    assert report.matches
    copied = {check.table: check.copied for check in report.tables}
    assert copied["messages"] == len(GROUPS) * MESSAGES_PER_GROUP - 3 * BATCH
    assert copied["chats"] == 0, "rows already there are skipped"


async def test_a_row_changed_in_the_target_shows_as_a_mismatch(installation: str, postgres_url: str) -> None:
    await copy_database(installation, postgres_url)
    target = Database(postgres_url)
    try:
        await Repository(target).chats.set_active_character(GROUPS[1], "orla")
    finally:
        await target.aclose()
    report = await copy_database(installation, postgres_url)
    changed = [check.table for check in report.tables if not check.matches]
    assert changed == ["catalog_changes", "chats"], "the chat, and the feed telling other processes of it"


async def test_copying_a_database_onto_itself_is_refused(installation: str) -> None:
    with pytest.raises(StorageError, match="the same database"):
        await copy_database(installation, installation)


def test_the_command_prints_each_table_and_the_time(
    installation: str, postgres_url: str, config: BotConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = Path(config.base_dir) / "bot.toml"
    config_file.write_text("[characters]\ndefault = 'orla'\n", encoding="utf-8")
    assert main(["--config", str(config_file), "db", "copy", "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    total = len(GROUPS) * MESSAGES_PER_GROUP
    assert re.search(rf"^messages +{total} rows \({total} copied now\)  ok$", out, re.MULTILINE), out
    assert "every table matches (counts and checksums)" in out
