"""The embedding queue: concurrent queries share one call, cached ones skip it, passages wait their turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from bot.engine import embedding_queue
from bot.engine.embedder import FloatArray, HashingEmbedder, QueryCache
from bot.engine.embedding_queue import EmbeddingQueue


class Recording(HashingEmbedder):
    """Records every call (kind, texts) and can be held inside a call until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        self.calls.append(("queries", list(texts)))
        self.inside.set()
        assert self.release.wait(10)
        return np.stack([super(Recording, self).embed_query(text) for text in texts])

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        self.calls.append(("passages", list(texts)))
        return super().embed_passages(texts)


@pytest.fixture
def model() -> Recording:
    return Recording()


@pytest.fixture
def queue(model: Recording) -> Iterator[EmbeddingQueue]:
    queue = EmbeddingQueue(model, max_wait_s=0.05, max_batch=8)
    yield queue
    queue.close()


async def hold_the_worker(model: Recording, queue: EmbeddingQueue) -> asyncio.Task[FloatArray]:
    """A query the model is inside of until ``model.release`` is set."""
    model.release.clear()
    busy = asyncio.create_task(queue.queries(["a reply being written"]))
    assert await asyncio.to_thread(model.inside.wait, 5)
    return busy


async def test_queries_arriving_while_a_batch_runs_share_the_next_call(
    model: Recording, queue: EmbeddingQueue
) -> None:
    busy = await hold_the_worker(model, queue)
    texts = [[f"group {number} asks about the storm"] for number in range(5)]
    waiting = asyncio.gather(*(queue.queries(text) for text in texts))
    await asyncio.sleep(0.01)
    model.release.set()
    results = await waiting
    await busy
    assert model.calls[1:] == [("queries", [text for (text,) in texts])]
    for (text,), vectors in zip(texts, results, strict=True):
        assert vectors.shape == (1, 256)
        assert np.allclose(vectors[0], HashingEmbedder().embed_query(text))
    assert queue.stats.query_batches == 2
    assert queue.stats.batch_sizes == [1, 5]


async def test_queries_close_together_wait_for_each_other_at_most_the_window(model: Recording) -> None:
    queue = EmbeddingQueue(model, max_wait_s=0.2)
    try:
        await queue.queries(["first"])
        started = time.perf_counter()
        await asyncio.gather(queue.queries(["second"]), queue.queries(["third"]))
        assert time.perf_counter() - started < 1.0
        assert model.calls == [("queries", ["first"]), ("queries", ["second", "third"])]
    finally:
        queue.close()


async def test_a_full_batch_does_not_wait(model: Recording) -> None:
    queue = EmbeddingQueue(model, max_wait_s=5.0, max_batch=4)
    try:
        await queue.queries(["first"])  # traffic: the next ones would wait up to 5 s for company
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(queue.queries([f"q{n}", f"c{n}"]) for n in range(2))), 2)
        assert time.perf_counter() - started < 1.0, "4 texts fill the batch: no 5 s wait"
        assert model.calls[1:] == [("queries", ["q0", "c0", "q1", "c1"])]
    finally:
        queue.close()


async def test_a_query_in_a_quiet_moment_does_not_wait(model: Recording) -> None:
    queue = EmbeddingQueue(model, max_wait_s=5.0)
    try:
        started = time.perf_counter()
        await asyncio.wait_for(queue.queries(["is the ferry running?"]), 2)
        assert time.perf_counter() - started < 1.0
        assert EmbeddingQueue(model).max_wait_s == 0.002
    finally:
        queue.close()


async def test_batches_are_split_at_max_batch_and_repeats_embedded_once(
    model: Recording, queue: EmbeddingQueue
) -> None:
    requests = [[f"text {n}", "the same context"] for n in range(6)]
    results = await asyncio.gather(*(queue.queries(texts) for texts in requests))
    embedded = [text for kind, texts in model.calls if kind == "queries" for text in texts]
    assert sorted(embedded) == sorted({text for texts in requests for text in texts})
    assert all(len(texts) <= 8 for _kind, texts in model.calls)
    assert all(np.array_equal(result[1], results[0][1]) for result in results)


async def test_cached_queries_never_reach_the_thread(model: Recording, queue: EmbeddingQueue) -> None:
    await queue.queries(["the lamp", "the storm"])
    model.calls.clear()
    again = await queue.queries(["the storm", "the lamp"])
    assert model.calls == []
    assert again.shape == (2, 256)
    await queue.queries(["the lamp", "a new line"])
    assert model.calls == [("queries", ["a new line"])], "only what the cache lacks"


async def test_a_shared_query_cache_is_used_as_it_is() -> None:
    cache = QueryCache(HashingEmbedder())
    queue = EmbeddingQueue(cache)
    try:
        assert queue.embedder is cache
        vectors = await queue.queries(["who is at the door?"])
        cached = cache.cached("who is at the door?")
        assert cached is not None
        assert np.array_equal(cached, vectors[0])
    finally:
        queue.close()


async def test_a_failing_model_fails_every_waiting_query() -> None:
    class Broken(HashingEmbedder):
        def embed_query(self, text: str) -> FloatArray:
            raise RuntimeError("out of memory")

    queue = EmbeddingQueue(Broken(), max_wait_s=0.05)
    try:
        results = await asyncio.gather(
            queue.queries(["a"]), queue.queries(["b"]), return_exceptions=True
        )
        assert [str(result) for result in results] == ["out of memory", "out of memory"]
        assert queue.idle(5)
    finally:
        queue.close()


async def test_passages_run_in_the_background_after_the_queries(
    model: Recording, queue: EmbeddingQueue
) -> None:
    stored: dict[str, FloatArray] = {}

    def store(texts: Sequence[str], vectors: FloatArray) -> None:
        stored.update(zip(texts, vectors, strict=True))

    first = await hold_the_worker(model, queue)
    queue.passages_later(["old message one", "old message two"], store)
    second = asyncio.create_task(queue.queries(["another group's question"]))
    await asyncio.sleep(0.1)
    model.release.set()
    await asyncio.gather(first, second)
    assert await asyncio.to_thread(queue.idle, 5)
    kinds = [kind for kind, _texts in model.calls]
    assert kinds[:2] == ["queries", "queries"], "the query that came after the passages went first"
    assert "passages" in kinds
    assert set(stored) == {"old message one", "old message two"}
    assert np.allclose(stored["old message one"], HashingEmbedder().embed_passages(["old message one"])[0])
    assert queue.stats.passages == 2
    assert queue.backlog == 0


def test_the_passage_backlog_is_bounded(model: Recording) -> None:
    queue = EmbeddingQueue(model, max_backlog=3)
    try:
        model.release.clear()
        with queue._ready:  # hold the worker so nothing is taken meanwhile
            queue.passages_later([f"m{n}" for n in range(5)], lambda texts, vectors: None)
            assert len(queue._passages) == 3
        assert queue.stats.dropped == 2
    finally:
        model.release.set()
        queue.close()


async def test_the_idle_thread_ends_and_a_new_request_starts_another(
    model: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_queue, "IDLE_EXIT_S", 0.05)
    queue = EmbeddingQueue(model, max_wait_s=0.0)
    try:
        await queue.queries(["first"])
        thread = queue._thread
        assert thread is not None
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive()
        assert np.allclose((await queue.queries(["second"]))[0], HashingEmbedder().embed_query("second"))
    finally:
        queue.close()


async def test_a_closed_queue_refuses_queries(model: Recording) -> None:
    queue = EmbeddingQueue(model)
    await queue.queries(["one"])
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.queries(["two"])


async def test_passages_wait_for_a_quiet_moment(model: Recording) -> None:
    queue = EmbeddingQueue(model, passage_idle_s=0.3)
    stored: list[str] = []
    try:
        await queue.queries(["a message being answered"])
        queue.passages_later(["its text", "its reply"], lambda texts, vectors: stored.extend(texts))
        await asyncio.sleep(0.1)
        assert stored == [], "a reply may still be on its way: the passages wait"
        assert await asyncio.to_thread(queue.idle, 5)
        assert sorted(stored) == ["its reply", "its text"]
    finally:
        queue.close()


async def test_a_long_backlog_runs_without_waiting_for_quiet(model: Recording) -> None:
    queue = EmbeddingQueue(model, passage_idle_s=60.0, passage_high_water=2)
    stored: list[str] = []
    try:
        await queue.queries(["busy"])
        queue.passages_later(["one", "two", "three"], lambda texts, vectors: stored.extend(texts))
        assert await asyncio.to_thread(queue.idle, 5)
        assert len(stored) >= 2, "past the high-water mark, a minute of traffic does not hold them"
    finally:
        queue.close()
