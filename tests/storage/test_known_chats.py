"""The reads behind the web console's Groups pages: every chat the bot knows in a page or two of
statements, each character's memory of a chat, its summaries, and usage kept apart per day."""

from __future__ import annotations

import pytest

from bot.messages import ChatKey
from storage import Repository

pytestmark = pytest.mark.both_databases

OLD, BUSY, QUIET = ChatKey("onebot", "1"), ChatKey("discord", "private:9"), ChatKey("onebot", "2")


async def say(repository: Repository, key: ChatKey, character_id: str | None, times: int = 1) -> None:
    for _ in range(times):
        await repository.messages.add(
            key, role="user", character_id=character_id, user_id="7", user_name="Pip", text="hi"
        )


async def test_known_chats_come_newest_message_first_with_their_state(repository: Repository) -> None:
    chats = repository.chats
    await say(repository, OLD, "orla", 3)  # messages, but no row in chats
    await chats.set_voice_mode(QUIET, "only")  # a row, but no messages
    await chats.set_character_disabled(QUIET, "xiaoman", True)
    await chats.set_manners(BUSY, chattiness=0.2, debounce_s=4)
    await say(repository, BUSY, None, 2)

    page, total = await chats.known(limit=10)
    assert total == 3
    assert [(chat.platform, chat.chat_id) for chat in page] == [
        ("discord", "private:9"),
        ("onebot", "1"),
        ("onebot", "2"),
    ]
    busy, old, quiet = page
    assert (busy.messages, old.messages, quiet.messages) == (2, 3, 0)
    assert busy.last_active is not None
    assert busy.last_active.tzinfo is not None
    assert quiet.last_active is None
    assert (busy.state.chattiness, busy.state.debounce_s) == (0.2, 4)
    assert old.state == await chats.state(OLD)
    assert quiet.state == await chats.state(QUIET)
    assert quiet.state.disabled == frozenset({"xiaoman"})


async def test_known_chats_are_paged_and_found_one_by_one(repository: Repository) -> None:
    for number in range(7):
        await say(repository, ChatKey("onebot", f"g{number}"), "orla")
    page, total = await repository.chats.known(limit=3, offset=6)
    assert total == 7
    assert [chat.chat_id for chat in page] == ["g0"]
    assert await repository.chats.known(limit=3, offset=9) == ([], 7)
    (one,), _ = await repository.chats.known(limit=1, key=ChatKey("onebot", "g4"))
    assert (one.chat_id, one.messages) == ("g4", 1)
    assert await repository.chats.known(limit=1, key=ChatKey("onebot", "nobody")) == ([], 0)


async def test_each_characters_memory_and_summary_of_a_chat(repository: Repository) -> None:
    await say(repository, OLD, "orla", 2)
    await say(repository, OLD, "xiaoman", 1)
    await say(repository, OLD, None, 4)
    await say(repository, QUIET, "orla", 5)
    memories = await repository.messages.character_memories(OLD)
    assert {character: count for character, (count, _first) in memories.items()} == {"orla": 2, "xiaoman": 1}
    for character, (count, first) in memories.items():
        assert (count, first) == await repository.messages.character_memory(OLD, character)
    await repository.chats.reset_memory(OLD)
    assert await repository.messages.character_memories(OLD) == {}, "counted since /reset, as /memory does"

    await repository.summaries.save(OLD, "orla", "Pip is kind.", 2)
    await repository.summaries.save(QUIET, "orla", "Someone else.", 9)
    assert await repository.summaries.of_chat(OLD) == {"orla": ("Pip is kind.", 2)}


async def test_usage_rows_can_keep_the_days_apart(repository: Repository) -> None:
    for day, tokens in (("2026-03-01", 10), ("2026-03-01", 5), ("2026-03-02", 7)):
        await repository.usage.add(OLD, "7", day, "echo", tokens, 1)
    await repository.usage.add(QUIET, "7", "2026-03-02", "echo", 100, 0)
    daily = await repository.usage.rows("2026-03-01", "2026-03-31", OLD, by_day=True)
    assert sorted((row.day, row.tokens, row.replies) for row in daily) == [
        ("2026-03-01", 17, 2),
        ("2026-03-02", 8, 1),
    ]
    (whole,) = await repository.usage.rows("2026-03-01", "2026-03-31", OLD)
    assert (whole.day, whole.tokens) == (None, 25)
