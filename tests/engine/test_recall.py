"""Long-term recall: an old message the new one is about comes back into the prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from bot.engine.embedder import FloatArray, HashingEmbedder, normalise
from bot.engine.embedding_queue import EmbeddingQueue
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


class Queued(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.passages: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        self.passages.extend(texts)
        return super().embed_passages(texts)


async def test_message_vectors_are_made_in_the_background_and_words_rank_until_then() -> None:
    embedder = Queued()
    queue = EmbeddingQueue(embedder)
    recall = Recall(embedder, queue=queue, candidates=10)
    older = [
        message(1, "my boat the Grey Heron has a red sail"),
        message(2, "the Grey Heron has a red sail and a red hull"),
        message(3, "a grey morning and a red sky over the sound"),
    ]
    question = "what colour is the sail of the Grey Heron?"
    try:
        first = await recall.search(older, question, 1)
        assert [m.id for m in first] == [1], "ranked by words while no vector exists"
        assert await asyncio.to_thread(queue.idle, 5)
        assert sorted(embedder.passages) == sorted(m.text for m in older[:2]), "the candidates, queued"
        assert recall.has_vector(older[0].text)
        assert not recall.has_vector(older[2].text), "never a candidate: never embedded"
        embedder.passages.clear()
        again = await recall.search(older, question, 1)
        assert len(again) == 1
        assert embedder.passages == [], "nothing embedded on the reply path"

        recall.remember(["a brand new message", "its reply", "a brand new message"])
        assert await asyncio.to_thread(queue.idle, 5)
        assert embedder.passages == ["a brand new message", "its reply"]
        assert recall.has_vector("its reply")
    finally:
        queue.close()


async def test_a_reply_embeds_one_query_and_remembers_its_lines_after(
    router: Router, model: EchoChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply path embeds the query once; the message and reply get their recall vectors later."""
    calls: list[tuple[str, list[str]]] = []
    real_queries = HashingEmbedder.embed_queries
    real_passages = HashingEmbedder.embed_passages

    def queries(self: HashingEmbedder, texts: Sequence[str]) -> FloatArray:
        calls.append(("queries", list(texts)))
        return np.stack([normalise(self._vector(text)) for text in texts])

    def passages(self: HashingEmbedder, texts: Sequence[str]) -> FloatArray:
        calls.append(("passages", list(texts)))
        return real_passages(self, texts)

    monkeypatch.setattr(HashingEmbedder, "embed_queries", queries)
    monkeypatch.setattr(HashingEmbedder, "embed_passages", passages)
    assert real_queries is not None
    recall = router.responder.recall
    queue = recall.queue
    assert queue is not None
    assert queue is router.responder.retriever.queue
    for text in ["Orla, is the kettle on?", "Orla, what do you cook on Sundays?", "Orla, and then?"]:
        calls.clear()
        await router.handle(group_message(text))
        on_the_path = [texts for kind, texts in calls if kind == "queries"]
        assert len(on_the_path) == 1, calls
        assert text.removeprefix("Orla, ") in on_the_path[0][0] or on_the_path[0][0] in text
        assert await asyncio.to_thread(queue.idle, 5)
        assert recall.has_vector(model.prompts[-1].message.text)
