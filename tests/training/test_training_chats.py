"""``export training --from-chats``: only chats whose admins said ``/training on`` are read, members
become pseudonyms, ids are scrubbed, and a chat stays on one side of the split."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import BotConfig
from bot.errors import ExportError
from bot.messages import ChatKey
from bot.training.conversations import MAX_TURNS, from_chat
from bot.training.export import ExportOptions, export_training, find_pack
from storage import Repository
from storage.messages import MessageRole, StoredMessage
from tests.training.test_training_export import config, records

__all__ = ["config"]

OPTED_IN = ChatKey("onebot", "group:1001")
NOT_ASKED = ChatKey("onebot", "group:2002")


async def talk(repository: Repository, key: ChatKey, lines: list[tuple[str, str, str]]) -> None:
    """``(user id, display name, text)`` lines to Orla, each answered by her ("" as the user id)."""
    for user_id, name, text in lines:
        if user_id:
            await repository.messages.add(
                key, role="user", character_id="orla", user_id=user_id, user_name=name, text=text
            )
        else:
            await repository.messages.add(
                key, role="character", character_id="orla", user_id="bot", user_name="Orla Finch", text=text
            )


async def test_only_the_chat_that_turned_training_on_is_exported_under_pseudonyms(
    config: BotConfig, repository: Repository, tmp_path: Path
) -> None:
    await talk(
        repository,
        OPTED_IN,
        [
            ("555001", "Wren Halloway", "Orla, is the lamp lit tonight? Text me on 13912345678."),
            ("", "", "Lit at dusk, Wren Halloway, same as every night for forty years."),
            ("555002", "Ivo", "Ivo here. Can Wren Halloway and I visit the tower on Sunday?"),
            ("", "", "Bring your own biscuits, Ivo. Barnacle ate mine."),
        ],
    )
    await talk(
        repository,
        NOT_ASKED,
        [("777003", "Secret Sam", "Never export this, Orla."), ("", "", "Nobody hears it from me, Sam.")],
    )
    await repository.chats.set_training(OPTED_IN, True)
    await repository.chats.set_training(NOT_ASKED, False)

    result = await export_training(
        config,
        ExportOptions("orla", format="openai", from_chats=True, out=tmp_path / "out"),
        repository=repository,
    )

    written = (result.out / "train.jsonl").read_text() + (result.out / "validation.jsonl").read_text()
    assert result.stats.chats == 1
    assert result.stats.sources["chat"] == 1
    for private in (
        "Secret Sam",
        "Never export this",
        "555001",
        "555002",
        "Wren Halloway",
        "Ivo",
        "13912345678",
    ):
        assert private not in written
    chat = next(
        row
        for row in records(result.out / "train.jsonl") + records(result.out / "validation.jsonl")
        if "lamp lit tonight" in json.dumps(row, ensure_ascii=False)
    )
    assert [message["content"] for message in chat["messages"][1:]] == [
        "Member 1:「Orla, is the lamp lit tonight? Text me on [phone].」",
        "Lit at dusk, Member 1, same as every night for forty years.",
        "Member 2:「Member 2 here. Can Member 1 and I visit the tower on Sunday?」",
        "Bring your own biscuits, Member 2. Barnacle ate mine.",
    ]
    assert result.stats.scrubbed == {"phone": 1}


async def test_without_from_chats_no_chat_is_read(
    config: BotConfig, repository: Repository, tmp_path: Path
) -> None:
    await talk(
        repository, OPTED_IN, [("1", "Ann", "Orla, hello from the harbour!"), ("", "", "Evening, Ann.")]
    )
    await repository.chats.set_training(OPTED_IN, True)

    result = await export_training(config, ExportOptions("orla", out=tmp_path / "out"), repository=repository)

    assert result.stats.sources["chat"] == 0
    assert "hello from the harbour" not in (result.out / "train.jsonl").read_text()


async def test_from_chats_needs_the_database(config: BotConfig, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="--from-chats needs the bot's database"):
        await export_training(config, ExportOptions("orla", from_chats=True, out=tmp_path / "out"))


def said(number: int, user: str | None, text: str, at: datetime) -> StoredMessage:
    role: MessageRole = "character" if user is None else "user"
    return StoredMessage(number, "orla", role, user or "bot", user or "Orla", text, at, speaker=user or "")


def test_a_pause_ends_a_conversation_and_a_long_session_is_cut_at_a_reply(config: BotConfig) -> None:
    pack = find_pack(config, "orla")
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    messages = [said(1, "u1", "Anyone awake?", start), said(2, None, "The lamp is.", start)]
    later = start + timedelta(hours=2)
    for number in range(MAX_TURNS):  # a session twice as long as one conversation may be
        messages.append(said(10 + 2 * number, "u2", f"Question {number}?", later))
        messages.append(said(11 + 2 * number, None, f"Answer {number}.", later))

    conversations = from_chat(pack, OPTED_IN, messages)

    assert [len(conversation.turns) for conversation in conversations] == [2, MAX_TURNS, MAX_TURNS]
    assert {conversation.group for conversation in conversations} == {"chat:onebot:group:1001"}
    for conversation in conversations:
        assert conversation.turns[0].role == "user"
        assert conversation.turns[-1].role == "assistant"
    assert conversations[1].turns[0].text == "Member 2:「Question 0?」"


def test_a_short_name_is_replaced_as_a_word_and_the_characters_own_name_is_kept(config: BotConfig) -> None:
    pack = find_pack(config, "orla")
    at = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    messages = [
        said(1, "Al", "Also, Al asks: is Orla there?", at),
        StoredMessage(2, "orla", "user", "u9", "Orla", "I'm Orla too!", at, speaker="Orla"),
        said(3, None, "Aye, Al. Two Orlas on one rock.", at),
    ]

    (conversation,) = from_chat(pack, OPTED_IN, messages)

    assert [turn.text for turn in conversation.turns] == [
        "Member 1:「Also, Member 1 asks: is Orla there?」\nMember 2:「I'm Orla too!」",
        "Aye, Member 1. Two Orlas on one rock.",
    ]
