"""Retrieval quality: recall@k and mean reciprocal rank of the named scene, three ways."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.engine.embedder import Embedder
from bot.engine.packs import CharacterPack
from bot.engine.retrieval import Retriever
from bot.eval.questions import EvalQuestion

MODES = ("dense", "lexical", "hybrid")


@dataclass(slots=True, frozen=True)
class RetrievalScores:
    pack: str
    mode: str
    questions: int
    recall: dict[int, float]
    """Share of questions whose scene is among the first ``k`` hits, by ``k``."""
    mrr: float


def ranks(retriever: Retriever, pack: CharacterPack, questions: Sequence[EvalQuestion]) -> list[int | None]:
    """The 1-based rank of each question's scene among all the pack's scenes (``None``: not found)."""
    found: list[int | None] = []
    for question in questions:
        hits = retriever.search_sync(pack, question.text, len(pack.scenes))
        order = [hit.scene.id for hit in hits]
        found.append(order.index(question.scene) + 1 if question.scene in order else None)
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
    """Dense only, lexical only and hybrid (``dense_weight``) scores of ``pack`` on ``questions``."""
    weights = {"dense": 1.0, "lexical": 0.0, "hybrid": dense_weight}
    scores = []
    for mode in MODES:
        retriever = Retriever(embedder, data_dir, dense_weight=weights[mode])
        retriever.index_sync(pack)
        scores.append(score(pack.id, mode, ranks(retriever, pack, questions), ks))
    return scores
