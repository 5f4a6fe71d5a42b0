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
from collections.abc import Sequence

import numpy as np

from bot.engine.embedder import Embedder
from bot.engine.lexical import BM25, tokenize
from bot.engine.retrieval import fuse, query_terms
from bot.errors import EmbeddingError
from storage.repository import StoredMessage

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.3
"""A message sharing less of the query than this is never recalled, however the embedder ranks it."""


class Recall:
    """Finds the older messages of a chat that a new message is about."""

    def __init__(self, embedder: Embedder | None, *, candidates: int = 20, dense_weight: float = 0.6) -> None:
        self.embedder = embedder
        self.candidates = candidates
        self.dense_weight = dense_weight

    def search_sync(self, older: Sequence[StoredMessage], query: str, k: int) -> list[StoredMessage]:
        """The ``k`` messages of ``older`` most relevant to ``query``, oldest first (blocking)."""
        if k <= 0 or not older or not query.strip():
            return []
        terms = query_terms(query)
        coverage = BM25([tokenize(message.text) for message in older]).coverage(terms)
        order = np.argsort(-coverage, kind="stable")[: self.candidates]
        order = order[coverage[order] >= MIN_COVERAGE]
        if order.size == 0:
            return []
        lexical = coverage[order]
        dense = None
        if self.embedder is not None and order.size > 1:
            try:
                vectors = self.embedder.embed_passages([older[index].text for index in order])
                dense = vectors @ self.embedder.embed_query(query)
            except EmbeddingError as exc:
                log.warning("recall by words only: %s", exc)
        fused = fuse(dense, lexical, self.dense_weight)
        best = sorted(int(order[position]) for position in np.argsort(-fused, kind="stable")[:k])
        return [older[index] for index in best]

    async def search(self, older: Sequence[StoredMessage], query: str, k: int) -> list[StoredMessage]:
        """:meth:`search_sync` in a worker thread (the embedder takes milliseconds per message)."""
        return await asyncio.to_thread(self.search_sync, older, query, k)
