"""Hybrid scene retrieval: which classic scenes of a character best fit the message being answered.

Two rankings of a pack's scenes are fused:

* **dense**: cosine between the query's embedding and each scene's (one matrix-vector product);
  it finds paraphrases and crosses languages. The query is the message, leading, mixed with the line
  before it (:mod:`bot.engine.query`).
* **lexical**: BM25 over words and Chinese bigrams (:mod:`bot.engine.lexical`); it finds the rare
  exact words (names, objects) that embeddings blur.

Fusion is weighted reciprocal rank fusion (see :func:`fuse`): ranks rather than raw scores, because
cosines and BM25 scores live on unrelated scales that also shift from pack to pack; the lexical share
is scaled by how much of the query a scene covers, so one incidental shared word stays a weak signal.

Scene embeddings are computed once per pack and model and cached on disk (:mod:`bot.engine.scene_cache`).
On the reply path the query is embedded through the retriever's :class:`EmbeddingQueue`, which batches
the queries of concurrent replies into one call.

If the embedder fails (at load or at query time) retrieval falls back to the lexical ranking and logs
a warning: a reply with less fitting scenes beats no reply.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.engine.embedder import Embedder, FloatArray
from bot.engine.embedding_queue import EmbeddingQueue
from bot.engine.lexical import BM25, tokenize
from bot.engine.packs import CharacterPack, Scene
from bot.engine.query import Query, query_vector
from bot.engine.scene_cache import MAX_SCENE_CHARS, Progress, cache_path, scene_passage, scene_vectors

__all__ = [
    "MAX_SCENE_CHARS",
    "RRF_K",
    "Progress",
    "Retriever",
    "SceneHit",
    "SceneIndex",
    "cache_path",
    "fuse",
    "scene_passage",
    "scene_vectors",
]

log = logging.getLogger(__name__)

RRF_K = 10.0
"""Reciprocal-rank-fusion constant: a scene at rank r of one ranking gets ``weight * (K + 1) / (K + r)``.

NOTE: the usual 60 is tuned for fusing long web result lists; over a few dozen to a few hundred
scenes it flattens the top so much that a scene ranked 1st by one side and 10th by the other barely
differs from one ranked 5th by both. 10 keeps the top ranks decisive.
"""


@dataclass(slots=True, frozen=True)
class SceneHit:
    """A retrieved scene and why: ``score`` is the fused score that orders hits (higher is better).

    ``dense`` is the cosine similarity (0.0 when dense scoring did not run: no embedder, a failure,
    or ``dense_weight == 0``); ``lexical`` is the BM25 score relative to the query's reference score
    (:meth:`BM25.coverage`: 0.0 no shared term, about 1.0 every term once).
    """

    scene: Scene
    score: float
    dense: float
    lexical: float


def _ranks(scores: FloatArray) -> FloatArray:
    """1-based competition ranks (ties share the best rank), highest score first."""
    descending = -np.sort(scores)[::-1]
    return (np.searchsorted(descending, -scores, side="left") + 1).astype(np.float32)


def fuse(dense: FloatArray | None, lexical: FloatArray, dense_weight: float) -> FloatArray:
    """Weighted reciprocal rank fusion, the lexical share scaled by how much of the query matched.

    ``score = w * (K + 1) / (K + dense_rank) + (1 - w) * coverage * (K + 1) / (K + lexical_rank)``
    with ``K = RRF_K``, ``w = dense_weight`` and ``coverage`` from :meth:`BM25.coverage` (1 for a
    scene holding each query term once); a scene at the top of both rankings with full coverage
    scores about 1.

    NOTE: plain RRF gives the BM25 winner the full lexical share even when it only shares one
    incidental word with a long message ("How *old* are you turning?" → the scene with an old map);
    in a small pack that beat the scene every embedding ranked first. Scaling by coverage keeps rank
    fusion's robustness to the two scales while letting a weak lexical match stay weak. A scene with
    no shared term gets no lexical share at all. ``dense=None`` (no embeddings) leaves the lexical
    share alone, ``w = 0`` orders exactly as BM25 does and ``w = 1`` exactly as the cosine does.
    """
    top = np.float32(RRF_K + 1.0)
    fused = np.zeros(lexical.shape, dtype=np.float32)
    if dense is not None and dense_weight > 0:
        fused += np.float32(dense_weight) * top / (np.float32(RRF_K) + _ranks(dense))
    if dense_weight < 1:
        fused += np.float32(1.0 - dense_weight) * lexical * top / (np.float32(RRF_K) + _ranks(lexical))
    return fused


class SceneIndex:
    """The searchable scenes of one pack: a BM25 index and, when an embedder works, scene vectors.

    Build it with :meth:`build` (blocking: tokenises every scene, may embed them). :meth:`search` is
    blocking too (one query embedding, unless it is given the query's vector); the :class:`Retriever`
    runs both in a worker thread.
    """

    def __init__(
        self,
        pack_id: str,
        content_hash: str,
        scenes: Sequence[Scene],
        lexical: BM25,
        vectors: FloatArray | None,
        embedder: Embedder | None,
        *,
        dense_weight: float = 0.6,
    ) -> None:
        if vectors is not None and vectors.shape[0] != len(scenes):
            raise ValueError(f"{vectors.shape[0]} vectors for {len(scenes)} scenes")
        self.pack_id = pack_id
        self.content_hash = content_hash
        self.scenes: tuple[Scene, ...] = tuple(scenes)
        self.lexical = lexical
        self.vectors = vectors
        self.embedder = embedder if vectors is not None else None
        self.dense_weight = dense_weight

    @classmethod
    def build(
        cls,
        pack: CharacterPack,
        embedder: Embedder | None,
        *,
        data_dir: Path | None = None,
        batch_size: int = 32,
        dense_weight: float = 0.6,
    ) -> SceneIndex:
        """Index ``pack``; with ``embedder=None`` (or a failing one) the index is lexical only."""
        index = cls.lexical_only(pack, dense_weight=dense_weight)
        if embedder is None:
            return index
        return index.with_vectors(
            scene_vectors(pack, embedder, data_dir=data_dir, batch_size=batch_size), embedder
        )

    @classmethod
    def lexical_only(cls, pack: CharacterPack, *, dense_weight: float = 0.6) -> SceneIndex:
        """The BM25 half alone: milliseconds to build, usable while the scenes are being embedded."""
        lexical = BM25([tokenize(scene.text) for scene in pack.scenes])
        return cls(pack.id, pack.content_hash, pack.scenes, lexical, None, None, dense_weight=dense_weight)

    def with_vectors(self, vectors: FloatArray | None, embedder: Embedder) -> SceneIndex:
        """This index with scene embeddings added (``None``: it stays lexical only)."""
        return SceneIndex(
            self.pack_id,
            self.content_hash,
            self.scenes,
            self.lexical,
            vectors,
            embedder,
            dense_weight=self.dense_weight,
        )

    @property
    def has_dense(self) -> bool:
        return self.vectors is not None

    def __len__(self) -> int:
        return len(self.scenes)

    def _dense_scores(self, query: Query, vector: FloatArray | None) -> FloatArray | None:
        if self.vectors is None or self.embedder is None:
            return None
        if vector is None:
            try:
                vector = query_vector(self.embedder, query)
            except Exception as exc:
                log.warning(
                    "query embedding failed (%s); pack %r falls back to lexical retrieval", exc, self.pack_id
                )
                return None
        if vector.shape != (self.vectors.shape[1],):
            log.warning("a %s query vector does not fit pack %r: lexical only", vector.shape, self.pack_id)
            return None
        scores: FloatArray = self.vectors @ vector
        return scores

    def search(
        self,
        query: str,
        k: int,
        context: str = "",
        *,
        dense_weight: float | None = None,
        vector: FloatArray | None = None,
        embed: bool = True,
    ) -> list[SceneHit]:
        """The ``k`` best scenes for ``query`` (after ``context``, the line before it), best first.

        ``vector`` is the query's embedding when the caller has it (:meth:`Retriever.search` gets it
        from the queue); without it the query is embedded here, unless ``embed`` is false (the
        embedding failed already: the search is lexical). Always returns ``min(k, scenes)`` hits,
        even weak ones: the prompt uses scenes as examples of the character's voice as well as of
        what was said.
        """
        if k <= 0 or not self.scenes:
            return []
        weight = self.dense_weight if dense_weight is None else dense_weight
        asked = Query(query, context)
        lexical = self.lexical.coverage(asked.terms())
        dense = self._dense_scores(asked, vector) if weight > 0 and (embed or vector is not None) else None
        fused = fuse(dense, lexical, weight)
        dense_or_zero = dense if dense is not None else np.zeros_like(lexical)
        # NOTE: lexsort's last key is the primary one: fused score, then cosine, then BM25, then scene order.
        order = np.lexsort((np.arange(len(self.scenes)), -lexical, -dense_or_zero, -fused))[:k]
        return [
            SceneHit(self.scenes[i], float(fused[i]), float(dense_or_zero[i]), float(lexical[i]))
            for i in order
        ]


class Retriever:
    """The scene indexes of every pack the engine serves, searched off the event loop.

    ``embedder=None`` gives lexical-only retrieval. ``data_dir=None`` keeps scene vectors in memory
    only. Indexes are built on first use (or ahead with :meth:`index`) and rebuilt when a pack's
    content hash changes. Safe to call from several threads: one pack is built once at a time.
    """

    def __init__(
        self,
        embedder: Embedder | None,
        data_dir: Path | None,
        dense_weight: float = 0.6,
        *,
        batch_size: int = 32,
        queue: EmbeddingQueue | None = None,
    ) -> None:
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.embedder = embedder
        self.data_dir = data_dir
        self.dense_weight = dense_weight
        self.batch_size = batch_size
        self.queue = queue if queue is not None or embedder is None else EmbeddingQueue(embedder)
        """Embeds the queries of the reply path, batched across groups (shared with recall)."""
        self._indexes: dict[str, SceneIndex] = {}
        self._generations: dict[str, int] = {}
        self._build_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, pack_id: str) -> SceneIndex | None:
        """The current index of ``pack_id``, if one was built."""
        with self._lock:
            return self._indexes.get(pack_id)

    def __contains__(self, pack_id: object) -> bool:
        with self._lock:
            return pack_id in self._indexes

    def _current(self, pack: CharacterPack, *, want_dense: bool) -> SceneIndex | None:
        index = self.get(pack.id)
        if index is None or index.content_hash != pack.content_hash:
            return None
        if want_dense and self.embedder is not None and not index.has_dense:
            return None
        return index

    def _build_lock(self, pack_id: str) -> threading.Lock:
        with self._lock:
            return self._build_locks.setdefault(pack_id, threading.Lock())

    def _publish(self, index: SceneIndex, generation: int) -> None:
        with self._lock:
            # NOTE: a forget() while we were building wins; the caller still gets its index.
            if self._generations.get(index.pack_id, 0) == generation:
                self._indexes[index.pack_id] = index

    def _build_locked(
        self, pack: CharacterPack, *, retry_dense: bool, progress: Progress | None = None
    ) -> SceneIndex:
        """Build the index of ``pack``; the caller holds its build lock."""
        index = self._current(pack, want_dense=retry_dense)
        if index is not None:
            return index
        with self._lock:
            generation = self._generations.get(pack.id, 0)
        lexical = self._current(pack, want_dense=False)
        if lexical is None:
            lexical = SceneIndex.lexical_only(pack, dense_weight=self.dense_weight)
        if self.embedder is None:
            index = lexical
        else:
            # Searches meanwhile get the lexical half instead of waiting for the embeddings.
            self._publish(lexical, generation)
            vectors = scene_vectors(
                pack, self.embedder, data_dir=self.data_dir, batch_size=self.batch_size, progress=progress
            )
            index = lexical.with_vectors(vectors, self.embedder)
        self._publish(index, generation)
        return index

    def index_sync(
        self, pack: CharacterPack, *, retry_dense: bool = False, progress: Progress | None = None
    ) -> SceneIndex:
        """Build or load the index of ``pack`` (blocking); reuse it while the content hash is unchanged.

        While the scenes are being embedded, :meth:`search` already answers from the lexical half.
        ``retry_dense`` rebuilds an index that fell back to lexical-only because the embedder failed;
        ``progress`` hears the scenes embedded so far.
        """
        index = self._current(pack, want_dense=retry_dense)
        if index is not None:
            return index
        with self._build_lock(pack.id):
            return self._build_locked(pack, retry_dense=retry_dense, progress=progress)

    async def index(self, pack: CharacterPack, progress: Progress | None = None) -> SceneIndex:
        """Build or load the index of ``pack`` in a worker thread (retrying a failed embedder)."""
        return await asyncio.to_thread(self.index_sync, pack, retry_dense=True, progress=progress)

    def search_sync(
        self,
        pack: CharacterPack,
        query: str,
        k: int,
        context: str = "",
        *,
        vector: FloatArray | None = None,
        embed: bool = True,
    ) -> list[SceneHit]:
        """:meth:`search`, blocking: for worker threads and benchmarks (``vector``, ``embed``: see
        :meth:`SceneIndex.search`)."""
        index = self._current(pack, want_dense=False)
        if index is None:
            build_lock = self._build_lock(pack.id)
            if build_lock.acquire(blocking=False):
                try:
                    index = self._build_locked(pack, retry_dense=False)
                finally:
                    build_lock.release()
            else:
                # NOTE: another thread is indexing this content and has not published its lexical
                # half yet; a private BM25 index (milliseconds) beats waiting for the embeddings.
                index = SceneIndex.lexical_only(pack, dense_weight=self.dense_weight)
        return index.search(query, k, context, dense_weight=self.dense_weight, vector=vector, embed=embed)

    async def search(self, pack: CharacterPack, query: str, k: int, context: str = "") -> list[SceneHit]:
        """The ``k`` scenes of ``pack`` that best fit ``query`` (after ``context``), best first.

        The query is embedded through :attr:`queue` (batched with other groups' queries), the search
        runs in a worker thread: the first search of a pack not yet indexed builds its index.
        """
        if k <= 0:
            return []
        index = self._current(pack, want_dense=False)
        vector, embed = None, True
        if index is not None and index.has_dense and self.dense_weight > 0 and self.queue is not None:
            vector = await self.query_vector(Query(query, context))
            embed = vector is not None
        return await asyncio.to_thread(self.search_sync, pack, query, k, context, vector=vector, embed=embed)

    async def query_vector(self, query: Query) -> FloatArray | None:
        """The vector of ``query`` from :attr:`queue`; None (logged) when the embedder fails."""
        if self.queue is None:
            return None
        try:
            return query.mix(await self.queue.queries(query.texts))
        except Exception as exc:
            log.warning("query embedding failed (%s); lexical retrieval for this message", exc)
            return None

    def forget(self, pack_id: str) -> None:
        """Drop the in-memory index of ``pack_id`` (its cache file stays for a later reload)."""
        with self._lock:
            self._indexes.pop(pack_id, None)
            self._generations[pack_id] = self._generations.get(pack_id, 0) + 1
