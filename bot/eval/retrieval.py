"""Retrieval quality: recall@k and mean reciprocal rank of the named scene, four ways.

``dense``, ``lexical`` and ``hybrid`` ask each question on its own. ``after-reply`` asks them the way
a conversation does, hybrid: every question comes right after the character's reply to the question
before it, a reply about another topic that quotes the start of that question and repeats a line of
its scene (:func:`after_replies`). A query that let the previous line lead would find the previous
topic; the message must lead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.engine.embedder import Embedder, QueryCache
from bot.engine.packs import CharacterPack
from bot.engine.retrieval import Retriever
from bot.eval.questions import EvalQuestion

MODES = ("dense", "lexical", "hybrid", "after-reply")

QUOTED_CHARS = 60
"""How much of the question the reply before the next question repeats."""


@dataclass(slots=True, frozen=True)
class RetrievalScores:
    pack: str
    mode: str
    questions: int
    recall: dict[int, float]
    """Share of questions whose scene is among the first ``k`` hits, by ``k``."""
    mrr: float


@dataclass(slots=True, frozen=True)
class Asked:
    """A question as a conversation asks it: after ``context``, the line before it."""

    question: EvalQuestion
    context: str = ""


def character_reply(pack: CharacterPack, question: EvalQuestion, quoted: int = QUOTED_CHARS) -> str:
    """A reply of the character to ``question``: its first ``quoted`` characters, then the longest
    line the character speaks in the question's scene (any speaker's when it speaks none)."""
    scene = next(scene for scene in pack.scenes if scene.id == question.scene)
    names = {name.casefold() for name in pack.names}
    spoken = [line.text for line in scene.lines if line.speaker.casefold() in names]
    spoken = spoken or [line.text for line in scene.lines]
    line = max(spoken, key=len, default="")
    quote = question.text[:quoted]
    return f"{quote}… {line}" if quote else line


def after_replies(pack: CharacterPack, questions: Sequence[EvalQuestion]) -> list[Asked]:
    """Each question after the character's reply to the one before it (the first after the last's)."""
    return [
        Asked(question, character_reply(pack, questions[number - 1]))
        for number, question in enumerate(questions)
    ]


def ranks(
    retriever: Retriever, pack: CharacterPack, questions: Sequence[EvalQuestion | Asked]
) -> list[int | None]:
    """The 1-based rank of each question's scene among all the pack's scenes (``None``: not found)."""
    found: list[int | None] = []
    for entry in questions:
        asked = entry if isinstance(entry, Asked) else Asked(entry)
        hits = retriever.search_sync(pack, asked.question.text, len(pack.scenes), asked.context)
        order = [hit.scene.id for hit in hits]
        scene = asked.question.scene
        found.append(order.index(scene) + 1 if scene in order else None)
    return found


def score(pack: str, mode: str, found: Sequence[int | None], ks: Sequence[int]) -> RetrievalScores:
    count = max(len(found), 1)
    recall = {k: sum(rank is not None and rank <= k for rank in found) / count for k in ks}
    mrr = sum(1 / rank for rank in found if rank is not None) / count
    return RetrievalScores(pack, mode, len(found), recall, mrr)


def evaluate_retrieval(
    pack: CharacterPack,
    questions: Sequence[EvalQuestion],
    embedder: Embedder,
    data_dir: Path,
    *,
    dense_weight: float,
    ks: Sequence[int] = (1, 3, 5),
) -> list[RetrievalScores]:
    """Dense only, lexical only, hybrid (``dense_weight``) and hybrid after replies, on ``questions``."""
    weights = {"dense": 1.0, "lexical": 0.0, "hybrid": dense_weight, "after-reply": dense_weight}
    scores = []
    for mode in MODES:
        retriever = Retriever(embedder, data_dir, dense_weight=weights[mode])
        retriever.index_sync(pack)
        asked = after_replies(pack, questions) if mode == "after-reply" else questions
        scores.append(score(pack.id, mode, ranks(retriever, pack, asked), ks))
    return scores


@dataclass(slots=True, frozen=True)
class QueryLatency:
    """Milliseconds to embed one question as a query, with the model alone (no query cache)."""

    embedder: str
    threads: int
    median_ms: float
    p90_ms: float
    queries: int

    def summary(self) -> str:
        return (
            f"query embedding ({self.embedder}, {self.threads} thread{'s' * (self.threads != 1)}): "
            f"median {self.median_ms:.1f} ms, p90 {self.p90_ms:.1f} ms over {self.queries} queries"
        )


def query_latency(embedder: Embedder, texts: Sequence[str], *, threads: int, rounds: int = 3) -> QueryLatency:
    """Time ``embedder`` embedding each of ``texts`` as a query, ``rounds`` times (blocking)."""
    model = embedder.inner if isinstance(embedder, QueryCache) else embedder
    model.load()
    model.embed_query("warm up")
    times = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            model.embed_query(text)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    middle = times[len(times) // 2] if times else 0.0
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))] if times else 0.0
    return QueryLatency(embedder.name, threads, middle, p90, len(times))
