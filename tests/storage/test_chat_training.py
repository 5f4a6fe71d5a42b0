"""A chat's consent to training-data export (``/training``), and the exchanges an export reads: off
by default, stored per chat for every process, and only a character's own posted exchanges since the
chat's last ``/reset``."""

from __future__ import annotations

import pytest

from bot.messages import ChatKey
from storage import Repository
from storage.chats import CHAT_CHANGED
from storage.deliveries import Outgoing

pytestmark = pytest.mark.both_databases

GROUP = ChatKey("onebot", "100")
OTHER = ChatKey("onebot", "200")


async def ask(repository: Repository, key: ChatKey, text: str, *, to: str | None = "orla") -> int:
    """Pip (user 42) says ``text`` to ``to`` (``None``: to the room)."""
    return await repository.messages.add(
        key, role="user", character_id=to, user_id="42", user_name="Pip today", text=text
    )


async def answer(repository: Repository, key: ChatKey, text: str, *, by: str = "orla") -> int:
    """``by``'s line ``text``, recorded as a pending delivery as the bot records a reply; its delivery id."""
    (delivery,) = await repository.deliveries.record(
        key.platform,
        key.chat_id,
        [Outgoing(text, character_id=by, line_of=by.title())],
        account="",
        answers=None,
        process="test",
    )
    return delivery


async def test_training_is_off_until_a_chat_turns_it_on(repository: Repository) -> None:
    chats = repository.chats
    assert not await chats.training(GROUP), "a chat the bot never saw"
    await chats.set_voice_mode(GROUP, "on")
    assert not await chats.training(GROUP), "a chat with a row of settings, but no consent"
    assert await chats.training_chats() == []

    before = await repository.catalog.last()
    await chats.set_training(GROUP, True)
    assert await chats.training(GROUP)
    assert not await chats.training(OTHER)
    assert [
        (pack_id, action) for _id, pack_id, action, _origin in await repository.catalog.after(before)
    ] == [("onebot:100", CHAT_CHANGED)], "the other processes are told"

    await chats.set_training(GROUP, False)
    assert not await chats.training(GROUP)
    assert await chats.training_chats() == []


async def test_training_chats_lists_only_those_that_said_yes_by_platform_and_chat(
    repository: Repository,
) -> None:
    chats = repository.chats
    for key in (ChatKey("onebot", "9"), ChatKey("discord", "5"), ChatKey("onebot", "10"), OTHER):
        await chats.set_training(key, True)
    await chats.set_training(GROUP, False)
    await chats.set_training(OTHER, False)
    await chats.set_images_enabled(ChatKey("discord", "1"), True)

    listed = await chats.training_chats()
    assert [(chat.platform, chat.chat_id) for chat in listed] == [
        ("discord", "5"),
        ("onebot", "10"),
        ("onebot", "9"),
    ]


async def test_exchanges_are_one_characters_posted_lines_and_what_was_said_to_it_oldest_first(
    repository: Repository,
) -> None:
    messages = repository.messages
    await repository.chats.participant_name(GROUP, "42", "Pip")
    first = await ask(repository, GROUP, "Orla, is the lamp lit?")
    posted = await answer(repository, GROUP, "Aye, since dusk.")
    await ask(repository, GROUP, "小满，来壶茶", to="xiaoman")
    await answer(repository, GROUP, "好嘞。", by="xiaoman")
    await ask(repository, GROUP, "anyone seen my boots?", to=None)
    await ask(repository, OTHER, "Orla, elsewhere", to="orla")
    await ask(repository, GROUP, "Orla, and the gulls?")
    failed = await answer(repository, GROUP, "The gulls never heard this.")
    dropped = await answer(repository, GROUP, "Nor this.")
    await answer(repository, GROUP, "Mind them.")  # still pending: about to be posted, so it counts
    await repository.deliveries.settle([posted], "posted")
    await repository.deliveries.settle([failed], "failed", "refused")
    await repository.deliveries.settle([dropped], "dropped")

    exchanged = await messages.exchanges(GROUP, "orla")
    assert [(message.role, message.speaker, message.text) for message in exchanged] == [
        ("user", "Pip", "Orla, is the lamp lit?"),
        ("character", "Orla", "Aye, since dusk."),
        ("user", "Pip", "Orla, and the gulls?"),
        ("character", "Orla", "Mind them."),
    ], "no room talk, no other character, no other chat, no line nobody saw"
    assert exchanged[0].id == first
    assert exchanged[0].user_name == "Pip today", "the display name stays as it was"
    assert {message.character_id for message in exchanged} == {"orla"}
    assert [message.id for message in exchanged] == sorted(message.id for message in exchanged)
    assert [message.text for message in await messages.exchanges(GROUP, "xiaoman")] == [
        "小满，来壶茶",
        "好嘞。",
    ]
    assert await messages.exchanges(GROUP, "nobody") == []
    assert await messages.exchanges(ChatKey("onebot", "never"), "orla") == []


async def test_exchanges_start_after_the_last_reset(repository: Repository) -> None:
    await ask(repository, GROUP, "Orla, before the reset")
    await answer(repository, GROUP, "Forgotten.")
    await ask(repository, OTHER, "Orla, in another chat")
    await repository.chats.reset_memory(GROUP)
    await ask(repository, GROUP, "Orla, after it")
    await answer(repository, GROUP, "Remembered.")

    exchanged = await repository.messages.exchanges(GROUP, "orla")
    assert [(message.speaker, message.text) for message in exchanged] == [
        ("Pip today", "Orla, after it"),
        ("Orla", "Remembered."),
    ], "a member without a stable name speaks by their display name"
    assert [message.text for message in await repository.messages.exchanges(OTHER, "orla")] == [
        "Orla, in another chat"
    ], "another chat's reset is not this one's"
