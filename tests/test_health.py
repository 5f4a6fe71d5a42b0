"""The storage watch: a deleted database file is written back with everything in it, and a database
that fails is told to the superusers once, to each chat once, and its recovery noticed."""

from __future__ import annotations

from pathlib import Path

from bot.config import BotConfig
from bot.health import UNAVAILABLE, StorageWatch
from bot.messages import ChatKey, Reply
from bot.outbox import Outbox
from bot.router import Router
from storage import Database, Repository
from tests.messages import group_message

GROUP = ChatKey("onebot", "100")
SUPERUSER = ChatKey("onebot", "private:1")


def replace_with_a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


async def remember(repository: Repository, text: str) -> None:
    await repository.messages.add(
        GROUP, role="user", character_id="orla", user_id="42", user_name="Pip", text=text
    )


async def test_a_database_file_deleted_while_running_is_written_back_with_everything(
    config: BotConfig, outbox: Outbox, announced: list[tuple[ChatKey, Reply]]
) -> None:
    database = Database(config.database_url)
    await database.upgrade()
    await database.keep_open()
    repository = Repository(database)
    watch = StorageWatch(database, outbox, ["onebot:1"])
    await remember(repository, "before the accident")
    assert database.path is not None
    database.path.unlink()
    await remember(repository, "after the accident")

    assert await watch.check() is None
    ((told, notice),) = announced
    assert told == SUPERUSER
    assert "was deleted while the bot was running; it has been written back" in notice.text
    await remember(repository, "once it was back")
    await database.aclose()

    reopened = Database(config.database_url)
    texts = [m.text for m in await Repository(reopened).messages.recent(GROUP, "orla", limit=10)]
    assert texts == ["before the accident", "after the accident", "once it was back"]
    await reopened.aclose()


async def test_a_failing_database_is_told_once_and_its_recovery_noticed(
    router: Router, database: Database, announced: list[tuple[ChatKey, Reply]]
) -> None:
    await database.keep_open()
    router.storage_watch = watch = StorageWatch(database, router.outbox, ["onebot:1"])
    (first,) = await router.handle(group_message("is the lamp lit?", to_me=True))
    assert database.path is not None
    path: Path = database.path
    replace_with_a_folder(path)
    await database.engine.dispose()

    (notice,) = await router.handle(group_message("are you there?", to_me=True))
    assert notice.text == UNAVAILABLE
    assert await router.handle(group_message("hello?", to_me=True)) == [], "each chat is told once"
    assert await router.handle(group_message("lunch?", group="200")) == [], "talk to no one gets nothing"
    (other,) = await router.handle(group_message("/who", group="200"))
    assert other.text == UNAVAILABLE
    assert await watch.check() is not None
    ((told, trouble),) = announced
    assert told == SUPERUSER
    assert trouble.text.startswith("The bot cannot use its database (")

    path.rmdir()  # noqa: ASYNC240
    assert await watch.check() is None, "the file is written back from the connection held open"
    assert [reply.text for _key, reply in announced[1:]] == [
        f"the database file {path} was deleted while the bot was running; it has been written back.",
        "The bot's database works again.",
    ]
    (again,) = await router.handle(group_message("is it back?", to_me=True))
    assert again.text == "Orla Finch heard Pip: is it back?"
    texts = [m.text for m in await router.repository.messages.recent(GROUP, "orla", limit=10)]
    assert texts == ["is the lamp lit?", first.text, "is it back?", again.text]
