"""The engine's own cost per message: everything but the model.

The real runtime (router, SQLite, the configured embedder, retrieval, prompt building, reply cleaning,
screenshot matching) answers the workload in one group; the chat model is wrapped so the time spent
waiting for it is measured and subtracted. What is left is what the engine adds to every reply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.bench.stats import Percentiles
from bot.bench.workload import BenchMessage
from bot.engine.embedder import Embedder, FloatArray, QueryCache
from bot.engine.model import ChatModel, Completion
from bot.engine.prompt import Prompt, TokenCounter
from bot.messages import Incoming, Sender
from bot.runtime import Runtime


class TimedEmbedder(Embedder):
    """An embedder that adds up the time spent in it (from any thread)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _timed(self, started: float) -> None:
        with self._lock:
            self.seconds += time.perf_counter() - started

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        started = time.perf_counter()
        try:
            return self.inner.embed_passages(texts)
        finally:
            self._timed(started)

    def embed_query(self, text: str) -> FloatArray:
        started = time.perf_counter()
        try:
            return self.inner.embed_query(text)
        finally:
            self._timed(started)

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        started = time.perf_counter()
        try:
            return self.inner.embed_queries(texts)
        finally:
            self._timed(started)


class TimedModel(ChatModel):
    """A chat model that remembers how long each call took and the prompt it was given."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.prompts: list[Prompt] = []

    async def complete(self, prompt: Prompt) -> Completion:
        started = time.perf_counter()
        try:
            return await self.inner.complete(prompt)
        finally:
            self.seconds += time.perf_counter() - started
            self.prompts.append(prompt)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(slots=True)
class EngineRun:
    """Per-message engine time (ms, model excluded) and prompt tokens, in workload order."""

    overhead_ms: list[float] = field(default_factory=list)
    embedding_ms: list[float] = field(default_factory=list)
    """Of the overhead, the time spent in the embedding model."""
    prompt_tokens: list[int] = field(default_factory=list)
    parts: dict[str, list[int]] = field(default_factory=dict)
    """Prompt tokens per part (persona, scenes, history, memory, message), per message."""

    @property
    def overhead(self) -> Percentiles:
        return Percentiles.of(self.overhead_ms)

    @property
    def tokens(self) -> Percentiles:
        return Percentiles.of([float(count) for count in self.prompt_tokens])

    @property
    def without_embedding(self) -> Percentiles:
        """The overhead less the embedding model's time: the engine's own work."""
        pairs = zip(self.overhead_ms, self.embedding_ms, strict=True)
        return Percentiles.of([total - embedding for total, embedding in pairs])


async def measure_engine(
    runtime: Runtime, model: TimedModel, pack_id: str, messages: Sequence[BenchMessage], *, group: str = "1"
) -> EngineRun:
    """Send ``messages`` to ``pack_id`` in one group of ``runtime`` (whose model is ``model``).

    The runtime's embedder must be a :class:`QueryCache` (as :func:`create_embedder` makes them): the
    model under it is timed for the run.
    """
    cache = runtime.embedder
    if not isinstance(cache, QueryCache):
        raise TypeError(f"the runtime's embedder is {cache!r}, not a QueryCache")
    counter = TokenCounter.default()
    run = EngineRun()
    timer = TimedEmbedder(cache.inner)
    cache.inner = timer
    try:
        await runtime.router.handle(_incoming(group, "/switch " + pack_id, "0", "bench"))
        for message in messages:
            before, embedded = model.seconds, timer.seconds
            started = time.perf_counter()
            replies = await runtime.router.handle(
                _incoming(group, message.text, message.user_id, message.speaker)
            )
            elapsed = time.perf_counter() - started
            if not replies:
                raise RuntimeError(f"no reply to {message.text!r}")
            run.overhead_ms.append((elapsed - (model.seconds - before)) * 1000)
            run.embedding_ms.append((timer.seconds - embedded) * 1000)
            _count_prompt(run, model.prompts[-1], counter)
    finally:
        cache.inner = timer.inner
    return run


def _count_prompt(run: EngineRun, prompt: Prompt, counter: TokenCounter) -> None:
    run.prompt_tokens.append(sum(counter.count(item["content"]) for item in prompt.to_messages()))
    tokens = prompt.tokens
    for part, value in (
        ("persona", tokens.persona),
        ("scenes", tokens.scenes + tokens.lore),
        ("history", tokens.history),
        ("memory", tokens.summary + tokens.recalled),
        ("message", tokens.message),
    ):
        run.parts.setdefault(part, []).append(value)


def _incoming(group: str, text: str, user_id: str, name: str) -> Incoming:
    return Incoming("bench", "group", group, Sender(user_id, name), text, to_me=True)
