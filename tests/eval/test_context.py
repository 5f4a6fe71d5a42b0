"""The message leads its context: held-out questions asked right after a reply about another topic.

Every question of the shipped packs' ``eval/questions.yaml`` is asked after the character's reply to
the question before it; the reply quotes 60 characters of that question and repeats a line of its
scene, as replies often do. Retrieval must find the new question's scene nearly as well as when the
question is asked alone, while a follow-up too short to stand alone still finds the previous topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.config import EmbeddingConfig, RetrievalConfig
from bot.engine.embedder import Embedder, create_embedder
from bot.engine.packs import CharacterPack, load_pack
from bot.engine.retrieval import Retriever
from bot.eval.questions import EvalQuestion, load_questions
from bot.eval.retrieval import Asked, RetrievalScores, after_replies, character_reply, ranks, score

SHIPPED = Path(__file__).parents[2] / "characters"
MARGIN = 0.06
"""How much worse than the question alone the question after a reply may do (about 3 questions of 50)."""

FOLLOW_UPS = {
    "orla": ["Really? Why?", "And then what happened?", "How did that go?"],
    "xiaoman": ["真的吗？为什么？", "然后呢？", "后来怎么样了？"],
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The default embedder (``python -m bot eval --retrieval-only`` shows the same rows for others)."""
    return create_embedder(EmbeddingConfig())


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[CharacterPack, list[EvalQuestion]]]:
    packs = {name: load_pack(SHIPPED / name) for name in ("orla", "xiaoman")}
    return {name: (pack, load_questions(pack)) for name, pack in packs.items()}


@pytest.fixture(scope="module")
def retriever(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    data = tmp_path_factory.mktemp("data")
    return Retriever(embedder, data, dense_weight=RetrievalConfig().dense_weight)


def scored(
    retriever: Retriever, pack: CharacterPack, mode: str, asked: Sequence[EvalQuestion | Asked]
) -> RetrievalScores:
    return score(pack.id, mode, ranks(retriever, pack, asked), (1, 3, 5))


@pytest.mark.parametrize("pack_id", ["orla", "xiaoman"])
def test_a_question_after_a_reply_on_another_topic_finds_its_own_scene(
    retriever: Retriever, shipped: dict[str, tuple[CharacterPack, list[EvalQuestion]]], pack_id: str
) -> None:
    pack, questions = shipped[pack_id]
    asked = after_replies(pack, questions)
    assert all(entry.context.startswith(questions[n - 1].text[:60]) for n, entry in enumerate(asked))
    alone = scored(retriever, pack, "hybrid", questions)
    after = scored(retriever, pack, "after-reply", asked)
    for k in (1, 3, 5):
        assert after.recall[k] >= alone.recall[k] - MARGIN, (k, alone, after)
    assert after.mrr >= alone.mrr - MARGIN, (alone, after)


@pytest.mark.parametrize("pack_id", ["orla", "xiaoman"])
def test_the_sequence_is_hard_when_the_context_leads(
    retriever: Retriever, shipped: dict[str, tuple[CharacterPack, list[EvalQuestion]]], pack_id: str
) -> None:
    """The old query (the end of the previous line, then the message, as one text) fails it."""
    pack, questions = shipped[pack_id]
    index = retriever.index_sync(pack)
    embedder = retriever.embedder
    assert embedder is not None
    assert index.vectors is not None
    first = 0
    for entry in after_replies(pack, questions):
        joined = f"{entry.context.strip()[-200:]}\n{entry.question.text}"
        cosines = index.vectors @ embedder.embed_query(joined)
        best = pack.scenes[int(cosines.argmax())].id
        first += best == entry.question.scene
    assert first / len(questions) <= 0.3, "the context-first query mostly found the previous topic"


@pytest.mark.parametrize("pack_id", ["orla", "xiaoman"])
def test_a_short_follow_up_still_finds_the_previous_topic(
    retriever: Retriever, shipped: dict[str, tuple[CharacterPack, list[EvalQuestion]]], pack_id: str
) -> None:
    pack, questions = shipped[pack_id]
    follow_ups = FOLLOW_UPS[pack_id]
    asked = [
        Asked(EvalQuestion(follow_ups[n % len(follow_ups)], question.scene), character_reply(pack, question))
        for n, question in enumerate(questions)
    ]
    found = scored(retriever, pack, "follow-up", asked)
    assert found.recall[3] >= 0.9, found
