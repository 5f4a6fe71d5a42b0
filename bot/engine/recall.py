"""Long-term recall: what was said in a chat long ago that bears on the new message.

The prompt's history window holds the newest messages and the summary the gist of the older ones;
recall brings back the exact older messages a new message is about ("what was the name of my boat,
the one I told you about in spring?"). It searches what the character witnessed in the chat before
the window, the way scenes are searched: BM25 picks candidates, the embedder reranks them, and the two
rankings are fused (:func:`bot.engine.retrieval.fuse`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from bot.engine.embedder import Embedder, FloatArray
from bot.engine.lexical import BM25, tokenize
from bot.engine.retrieval import fuse, query_terms, query_text
from bot.errors import EmbeddingError
from storage.messages import StoredMessage

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.3
"""A message sharing less of the query than this is never recalled, however the embedder ranks it."""


class Recall:
    """Finds the older messages of a chat that a new message is about."""

    def __init__(
        self,
        embedder: Embedder | None,
        *,
        candidates: int = 20,
        dense_weight: float = 0.6,
        remember: int = 50_000,
    ) -> None:
        self.embedder = embedder
        self.candidates = candidates
        self.dense_weight = dense_weight
        self.remember = remember
        """How many messages' words and vectors are kept between searches (a message never changes,
        so each is tokenised and embedded once, not at every reply that searches it)."""
        self._tokens: OrderedDict[tuple[int, str], list[str]] = OrderedDict()
        self._vectors: OrderedDict[tuple[int, str], FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def search_sync(
        self, older: Sequence[StoredMessage], query: str, k: int, context: str = ""
    ) -> list[StoredMessage]:
        """The ``k`` messages of ``older`` most relevant to ``query``, oldest first (blocking).

        The embedder sees ``context`` before the query, as in scene retrieval, so the reply's one query
        vector serves both searches; the words that pick candidates are the query's own.
        """
        if k <= 0 or not older or not query.strip():
            return []
        terms = query_terms(query)
        coverage = BM25(self._tokenized(older)).coverage(terms)
        order = np.argsort(-coverage, kind="stable")[: self.candidates]
        order = order[coverage[order] >= MIN_COVERAGE]
        if order.size == 0:
            return []
        lexical = coverage[order]
        dense = None
        if order.size <= k:
            return [older[index] for index in sorted(int(index) for index in order)]
        if self.embedder is not None:
            try:
                vectors = self._embedded(self.embedder, [older[index] for index in order])
                dense = vectors @ self.embedder.embed_query(query_text(query, context))
            except EmbeddingError as exc:
                log.warning("recall by words only: %s", exc)
        fused = fuse(dense, lexical, self.dense_weight)
        best = sorted(int(order[position]) for position in np.argsort(-fused, kind="stable")[:k])
        return [older[index] for index in best]

    def _tokenized(self, messages: Sequence[StoredMessage]) -> list[list[str]]:
        with self._lock:
            known = [self._tokens.get((message.id, message.text)) for message in messages]
        tokens = [
            found if found is not None else tokenize(m.text) for found, m in zip(known, messages, strict=True)
        ]
        with self._lock:
            for message, words in zip(messages, tokens, strict=True):
                self._tokens[(message.id, message.text)] = words
                self._tokens.move_to_end((message.id, message.text))
            while len(self._tokens) > self.remember:
                self._tokens.popitem(last=False)
        return tokens

    def _embedded(self, embedder: Embedder, messages: Sequence[StoredMessage]) -> FloatArray:
        keys = [(message.id, message.text) for message in messages]
        with self._lock:
            missing = [key for key in keys if key not in self._vectors]
        if missing:
            fresh = embedder.embed_passages([text for _id, text in missing])
            with self._lock:
                for key, vector in zip(missing, fresh, strict=True):
                    self._vectors[key] = vector
                while len(self._vectors) > self.remember:
                    self._vectors.popitem(last=False)
        with self._lock:
            found = [self._vectors.get(key) for key in keys]
        if any(vector is None for vector in found):
            return embedder.embed_passages([text for _id, text in keys])
        return np.stack([vector for vector in found if vector is not None])

    async def search(
        self, older: Sequence[StoredMessage], query: str, k: int, context: str = ""
    ) -> list[StoredMessage]:
        """:meth:`search_sync` in a worker thread (the embedder takes milliseconds per message)."""
        return await asyncio.to_thread(self.search_sync, older, query, k, context)
