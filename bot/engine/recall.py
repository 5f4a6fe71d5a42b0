"""Long-term recall: what was said in a chat long ago that bears on the new message.

The prompt's history window holds the newest messages and the summary the gist of the older ones;
recall brings back the exact older messages a new message is about ("what was the name of my boat,
the one I told you about in spring?"). It searches what the character witnessed in the chat before
the window, the way scenes are searched: BM25 picks candidates, the embedder reranks them, and the two
rankings are fused (:func:`bot.engine.retrieval.fuse`).

The reply path embeds nothing for recall but the query, which scene retrieval needs anyway. A
message's vector is computed after the reply, in the background (:meth:`Recall.remember`, batched
by the :class:`~bot.engine.embedding_queue.EmbeddingQueue`), long before it is old enough to be
recalled; a candidate whose vector is not there yet (after a restart, say) is scored by its words
alone and queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from bot.engine.embedder import Embedder, FloatArray
from bot.engine.embedding_queue import EmbeddingQueue
from bot.engine.lexical import coverage_of, tokenize
from bot.engine.query import Query, clip, query_vector
from bot.engine.retrieval import fuse
from bot.errors import EmbeddingError

log = logging.getLogger(__name__)


class Said(Protocol):
    """What recall needs of a stored message (``storage.messages.StoredMessage`` is one)."""

    @property
    def id(self) -> int: ...

    @property
    def text(self) -> str: ...


Message = TypeVar("Message", bound=Said)

MIN_COVERAGE = 0.3
"""A message sharing less of the query than this is never recalled, however the embedder ranks it."""

Candidates = tuple[np.ndarray, FloatArray]
"""Indexes of the candidate messages (best BM25 first) and their BM25 coverage."""


class Recall:
    """Finds the older messages of a chat that a new message is about.

    With a ``queue``, message vectors are computed in the background (:meth:`remember`) and the
    query vector comes from the queue; without one, a search embeds the candidates it lacks itself.
    """

    def __init__(
        self,
        embedder: Embedder | None,
        *,
        candidates: int = 20,
        dense_weight: float = 0.6,
        remember: int = 50_000,
        queue: EmbeddingQueue | None = None,
    ) -> None:
        self.embedder = embedder
        self.candidates = candidates
        self.dense_weight = dense_weight
        self.remember_size = remember
        """How many messages' words and vectors are kept between searches (a message never changes,
        so each is tokenised and embedded once, not at every reply that searches it)."""
        self.queue = queue if embedder is not None else None
        self._words: OrderedDict[tuple[int, str], Counter[str]] = OrderedDict()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, texts: Iterable[str]) -> None:
        """Have the vectors of new messages computed in the background (never blocks).

        Fed after a reply with the message and the reply; without a queue it does nothing (a
        search embeds what it lacks).
        """
        if self.queue is None:
            return
        with self._lock:
            missing = [text for text in dict.fromkeys(map(clip, texts)) if text and text not in self._vectors]
        self.queue.passages_later(missing, self._store)

    def has_vector(self, text: str) -> bool:
        with self._lock:
            return clip(text) in self._vectors

    def _store(self, texts: Sequence[str], vectors: FloatArray) -> None:
        # NOTE: kept as float16: 50,000 messages of 512 dimensions take 51 MB instead of 102, and a
        # cosine changes in the fourth decimal.
        halves = vectors.astype(np.float16)
        with self._lock:
            for text, vector in zip(texts, halves, strict=True):
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.remember_size:
                self._vectors.popitem(last=False)

    def _candidates(self, older: Sequence[Message], query: str) -> Candidates | None:
        """The messages sharing enough of the query's own words, best first (blocking: tokenises)."""
        words = self._counted(older)
        lengths = np.fromiter((count.total() for count in words), dtype=np.float32, count=len(words))
        coverage = coverage_of(words, lengths, Query(query).terms())
        order = np.argsort(-coverage, kind="stable")[: self.candidates]
        order = order[coverage[order] >= MIN_COVERAGE]
        return (order, coverage[order]) if order.size else None

    def _rank(
        self,
        older: Sequence[Message],
        picked: Candidates,
        k: int,
        vector: FloatArray | None,
    ) -> list[Message]:
        """The ``k`` best candidates, oldest first; those without a vector are scored by their words."""
        order, lexical = picked
        if order.size <= k:
            return [older[index] for index in sorted(int(index) for index in order)]
        texts = [clip(older[index].text) for index in order]
        with self._lock:
            found = [self._vectors.get(text) for text in texts]
        missing = [text for text, found_vector in zip(texts, found, strict=True) if found_vector is None]
        if missing and self.queue is None and self.embedder is not None:
            try:
                self._store(missing, self.embedder.embed_passages(missing))
            except EmbeddingError as exc:
                log.warning("recall by words only: %s", exc)
            with self._lock:
                found = [self._vectors.get(text) for text in texts]
        elif missing and self.queue is not None:
            self.queue.passages_later(missing, self._store)
        fused = fuse(None, lexical, 0.0)
        known = np.array([found_vector is not None for found_vector in found])
        if vector is not None and known.any():
            dense = np.full(len(texts), -np.inf, dtype=np.float32)
            dense[known] = np.stack([v for v in found if v is not None]).astype(np.float32) @ vector
            # NOTE: a candidate without a vector keeps its words-only score at full weight.
            fused = np.where(known, fuse(dense, lexical, self.dense_weight), fused)
        best = sorted(int(order[position]) for position in np.argsort(-fused, kind="stable")[:k])
        return [older[index] for index in best]

    def search_sync(self, older: Sequence[Message], query: str, k: int, context: str = "") -> list[Message]:
        """The ``k`` messages of ``older`` most relevant to ``query``, oldest first (blocking).

        The embedder sees the query as scene retrieval does (the message, after ``context``), so the
        reply's one query vector serves both searches; the words that pick candidates are the
        message's own.
        """
        if k <= 0 or not older or not query.strip():
            return []
        picked = self._candidates(older, query)
        if picked is None:
            return []
        vector = None
        if self.embedder is not None and picked[0].size > k:
            try:
                vector = query_vector(self.embedder, Query(query, context))
            except EmbeddingError as exc:
                log.warning("recall by words only: %s", exc)
        return self._rank(older, picked, k, vector)

    async def search(self, older: Sequence[Message], query: str, k: int, context: str = "") -> list[Message]:
        """:meth:`search_sync` with the query embedded through the queue (batched with other groups')."""
        if self.queue is None:
            return await asyncio.to_thread(self.search_sync, older, query, k, context)
        if k <= 0 or not older or not query.strip():
            return []
        picked = await asyncio.to_thread(self._candidates, older, query)
        if picked is None:
            return []
        vector = None
        if picked[0].size > k:
            asked = Query(query, context)
            try:
                vector = asked.mix(await self.queue.queries(asked.texts))
            except Exception as exc:
                log.warning("recall by words only: %s", exc)
        return self._rank(older, picked, k, vector)

    def _counted(self, messages: Sequence[Said]) -> list[Counter[str]]:
        """Each message's words, counted (cached: a message never changes)."""
        with self._lock:
            known = [self._words.get((message.id, message.text)) for message in messages]
        counted = [
            found if found is not None else Counter(tokenize(message.text))
            for found, message in zip(known, messages, strict=True)
        ]
        with self._lock:
            for message, words in zip(messages, counted, strict=True):
                self._words[(message.id, message.text)] = words
                self._words.move_to_end((message.id, message.text))
            while len(self._words) > self.remember_size:
                self._words.popitem(last=False)
        return counted
