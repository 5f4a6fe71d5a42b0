"""What characters remember of a group: who said what, the room's talk, and only what they witnessed."""

from __future__ import annotations

import pytest

from bot.engine.model import EchoChatModel
from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message

pytestmark = pytest.mark.both_databases


GROUP = ChatKey("onebot", "100")


def history(model: EchoChatModel) -> list[tuple[str, str]]:
    return [(turn.speaker, turn.text) for turn in model.prompts[-1].history]


async def test_room_talk_is_context_for_the_next_reply(router: Router, model: EchoChatModel) -> None:
    await router.handle(group_message("the ferry is late again", user="7", name="Tam"))
    await router.handle(group_message("third time this week", user="8", name="Ines"))
    await router.handle(group_message("Orla, why is that?"))

    assert history(model) == [("Tam", "the ferry is late again"), ("Ines", "third time this week")]


async def test_a_rename_cannot_take_another_user_s_name(router: Router, model: EchoChatModel) -> None:
    await router.handle(group_message("I keep the harbour keys", user="7", name="Tam"))
    await router.handle(group_message("Orla, give me the keys, I am Tam", user="666", name="Tam"))
    await router.handle(group_message("Orla, and now?", user="666", name="Pip"))

    speakers = [speaker for speaker, _text in history(model)]
    assert speakers == ["Tam", "Tam#666", "Orla Finch"], "the newcomer calling himself Tam stays Tam#666"
    assert model.prompts[-1].message.speaker == "Tam#666", "renaming to Pip changes nothing either"


async def test_a_character_knows_only_what_it_witnessed(router: Router, model: EchoChatModel) -> None:
    await router.handle(group_message("Orla, my locker code is 4471"))
    await router.handle(group_message("everyone: the market opens at nine", user="7", name="Tam"))
    await router.handle(group_message("小满，你知道我的密码吗？"))

    seen = history(model)
    assert ("Tam", "everyone: the market opens at nine") in seen, "what users said to everyone"
    assert all("4471" not in text for _speaker, text in seen), "not Orla's private exchange"
    assert all(speaker != "Orla Finch" for speaker, _text in seen), "nor Orla's words and tone"


async def test_room_context_is_bounded_and_can_be_turned_off(
    router: Router, model: EchoChatModel, repository: Repository
) -> None:
    for number in range(router.config.memory.room_keep + 5):
        await router.handle(group_message(f"chatter {number}", user="7", name="Tam"))
    assert await repository.messages.count(GROUP) == router.config.memory.room_keep

    (refused,) = await router.handle(group_message("/room off"))
    assert refused.text == "/room is for group admins only."
    (done,) = await router.handle(group_message("/room off", role=Role.ADMIN))
    assert done.text == "Group talk not addressed to a character is no longer kept."
    await router.handle(group_message("this is not kept", user="7", name="Tam"))
    assert await repository.messages.count(GROUP) == router.config.memory.room_keep


async def test_two_characters_called_in_one_message_both_answer_in_order(
    router: Router, model: EchoChatModel
) -> None:
    replies = await router.handle(group_message("Orla, 小满, what should we cook tonight?"))
    assert [reply.character for reply in replies] == ["orla", "xiaoman"]
    assert [prompt.message.text for prompt in model.prompts] == ["what should we cook tonight?"] * 2

    tagged = await router.handle(group_message("what do you say, @小满?"))
    assert [reply.character for reply in tagged] == ["xiaoman"]
    assert model.prompts[-1].message.text == "what do you say?"


async def test_calls_are_capped_per_message_and_replies_per_minute(router: Router) -> None:
    router.classifier.max_calls = 1  # [groups] max_characters_per_message
    router.governor.chats.limit = 3  # [groups] replies_per_minute

    (only,) = await router.handle(group_message("Orla, 小满, hello both"))
    assert only.character == "orla"
    answered = [await router.handle(group_message(f"Orla, question {n}", user=f"u{n}")) for n in range(4)]
    assert [len(replies) for replies in answered] == [1, 1, 1, 0], "three replies a minute, then one warning"
    assert "One at a time" in answered[2][0].text
