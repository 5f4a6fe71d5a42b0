"""Manners in busy groups: joining talk unprompted (``/chatty``), and one answer per burst (``/debounce``)."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.engine.model import EchoChatModel
from bot.messages import Incoming, Reply, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message, private_message

pytestmark = pytest.mark.both_databases


async def admin(router: Router, command: str) -> str:
    (reply,) = await router.handle(group_message(command, role=Role.ADMIN))
    return reply.text


async def burst(router: Router, *messages: Incoming, gap_s: float = 0.05) -> list[list[Reply]]:
    """Send ``messages`` a moment apart, as a user typing fast does, and collect what each got."""

    async def send(delay: float, incoming: Incoming) -> list[Reply]:
        await asyncio.sleep(delay)
        return await router.handle(incoming)

    return list(await asyncio.gather(*(send(n * gap_s, m) for n, m in enumerate(messages))))


async def test_by_default_characters_speak_only_when_called(router: Router, model: EchoChatModel) -> None:
    for number in range(20):
        assert await router.handle(group_message(f"chatter {number}", user="7", name="Tam")) == []
    assert model.prompts == []


async def test_a_chatty_character_joins_the_talk_without_quoting(
    router: Router, model: EchoChatModel
) -> None:
    assert (
        await admin(router, "/chatty 100%")
        == "Orla Finch now joins talk addressed to no one about 100% of the time."
    )
    (joined,) = await router.handle(group_message("the ferry is late again", user="7", name="Tam"))
    assert (joined.character, joined.quote) == ("orla", False)
    assert model.prompts[-1].message.text == "the ferry is late again"

    (again,) = await router.handle(group_message("third time this week", user="8", name="Ines"))
    assert again.text == "Orla Finch heard Ines: third time this week"
    history = [(turn.speaker, turn.text) for turn in model.prompts[-1].history]
    assert history[-2:] == [("Tam", "the ferry is late again"), ("Orla Finch", joined.text)]


async def test_chattiness_is_the_chance_of_joining(router: Router, model: EchoChatModel) -> None:
    router.governor.chats.limit = router.governor.members.limit = 1000
    router.gatherer.chance = random.Random(2026)
    dice = random.Random(2026)
    expected = sum(dice.random() < 0.3 for _ in range(60))

    await admin(router, "/chatty 30%")
    joined = [
        bool(await router.handle(group_message(f"chatter {n}", user="7", name="Tam"))) for n in range(60)
    ]

    assert sum(joined) == expected
    assert 6 < expected < 30, "the seed gives a fair sample of a 30% chance"


async def test_a_chatty_character_joins_even_with_room_context_off(
    router: Router, model: EchoChatModel, repository: Repository
) -> None:
    await admin(router, "/room off")
    await admin(router, "/chatty 1")
    assert await router.handle(group_message("not kept", user="7", name="Tam")) != []
    assert model.prompts[-1].message.text == "not kept"
    stored = await repository.messages.recent(group_message("").key, "orla", limit=5)
    assert stored[0].text == "not kept", "the message Orla answered is hers now"


async def test_chatty_shows_resets_and_refuses_nonsense(router: Router) -> None:
    (refused,) = await router.handle(group_message("/chatty 50%"))
    assert refused.text == "/chatty is for group admins only."
    assert await admin(router, "/chatty") == (
        "Orla Finch speaks only when called here (/chatty 10% lets them join in now and then)."
    )
    assert await admin(router, "/chatty 0.05") == (
        "Orla Finch now joins talk addressed to no one about 5% of the time."
    )
    assert (
        await admin(router, "/chatty")
        == "Orla Finch joins talk addressed to no one about 5% of the time here."
    )
    assert await admin(router, "/chatty lots") == "'lots' is not a chance: write a percentage (10%) or off."
    assert await admin(router, "/chatty 150%") == "'150%' is more than 100%."
    assert await admin(router, "/chatty default") == "Orla Finch now speaks only when called."
    (private,) = await router.handle(private_message("/chatty 10%"))
    assert private.text == "/chatty is for groups: in a private chat every message is answered."


async def test_a_burst_gets_one_answer_to_its_last_message(router: Router, model: EchoChatModel) -> None:
    assert await admin(router, "/debounce 0.4s") == (
        "A burst of messages now gets one answer, 0.4s after its last message."
    )
    got = await burst(
        router,
        group_message("Orla, wait"),
        group_message("Orla, I have news"),
        group_message("Orla, the ferry sank"),
    )

    assert [len(replies) for replies in got] == [0, 0, 1]
    assert got[2][0].text == "Orla Finch heard Pip: the ferry sank"
    (prompt,) = model.prompts
    assert [turn.text for turn in prompt.history] == ["wait", "I have news"]


async def test_a_burst_that_ends_in_room_talk_is_still_answered(router: Router, model: EchoChatModel) -> None:
    await admin(router, "/debounce 0.4")
    got = await burst(router, group_message("Orla, news!"), group_message("it is about the ferry"))
    assert [len(replies) for replies in got] == [0, 1]
    (prompt,) = model.prompts
    assert (prompt.message.text, [turn.text for turn in prompt.history]) == (
        "it is about the ferry",
        ["news!"],
    )


async def test_bursts_are_per_user(router: Router, model: EchoChatModel) -> None:
    await admin(router, "/debounce 0.4")
    got = await burst(
        router,
        group_message("Orla, one", user="1", name="Ann"),
        group_message("Orla, two", user="2", name="Bo"),
        group_message("Orla, three", user="1", name="Ann"),
    )
    assert [len(replies) for replies in got] == [0, 1, 1]
    assert sorted(prompt.message.text for prompt in model.prompts) == ["three", "two"]


async def test_debounce_shows_and_refuses_nonsense(router: Router) -> None:
    assert await admin(router, "/debounce") == (
        "Each message is answered at once here (/debounce 3s waits for the rest of a burst)."
    )
    assert (await admin(router, "/debounce 3秒")).startswith(
        "A burst of messages now gets one answer, 3s after"
    )
    assert await admin(router, "/debounce 90s") == "At most 60 seconds."
    assert await admin(router, "/debounce 10%") == "'10%' is not a number of seconds: write e.g. 3s, or off."
    assert await admin(router, "/debounce off") == "Each message is now answered at once."
