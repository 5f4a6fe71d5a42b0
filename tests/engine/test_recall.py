"""Long-term recall: an old message the new one is about comes back into the prompt."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.engine.embedder import HashingEmbedder
from bot.engine.model import EchoChatModel
from bot.engine.recall import Recall
from bot.router import Router
from storage.messages import StoredMessage
from tests.messages import group_message

CHATTER = [
    "the tide is out early today",
    "Barnacle chased a gull along the pier",
    "the lamp oil came on the Tuesday boat",
    "we should paint the railings before winter",
]


async def test_a_fact_said_500_messages_earlier_is_recalled(router: Router, model: EchoChatModel) -> None:
    router.governor.chats.limit = router.governor.members.limit = 10_000
    await router.handle(group_message("Orla, my little boat is called the Grey Heron", user="7", name="Tam"))
    for number in range(250):
        await router.handle(group_message(f"Orla, {CHATTER[number % len(CHATTER)]} ({number})"))

    await router.handle(group_message("Orla, what was my boat called again?", user="7", name="Tam"))

    prompt = model.prompts[-1]
    assert "Tam:「my little boat is called the Grey Heron」" in prompt.recalled
    assert all("Grey Heron" not in turn.text for turn in prompt.history), "far outside the history window"
    assert "Said here earlier, bearing on this:\n- " in prompt.system_text()
    assert prompt.tokens.recalled > 0


def message(number: int, text: str) -> StoredMessage:
    return StoredMessage(number, "orla", "user", "7", "Tam", text, datetime.now(UTC), speaker="Tam")


def test_nothing_is_recalled_when_nothing_bears_on_the_message() -> None:
    recall = Recall(HashingEmbedder())
    older = [message(number, text) for number, text in enumerate(CHATTER, start=1)]
    assert recall.search_sync(older, "what is the capital of France?", 3) == []
    assert [found.id for found in recall.search_sync(older, "who chased the gull?", 1)] == [2]
