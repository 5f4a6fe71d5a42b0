"""llama.cpp's server, run in this process by ``xllamacpp``, kept private and spoken to directly.

xllamacpp always opens llama.cpp's HTTP server beside its in-process handlers. Here it binds a Unix
socket in a folder only this user can enter (``mkdtemp`` makes it 0700), and every route wants a key
made at random for this process: no other process, and no network, reaches the model. Chat
completions go through the in-process handler; saving and restoring a slot (the prompt a slot has
read, as its cache state) only exists as a route, so that one goes over the private socket.

Everything here blocks: :class:`~bot.engine.local_model.LocalChatModel` calls it on worker threads.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from bot.errors import ModelError, missing_extra

log = logging.getLogger(__name__)

PROMPT_CACHE_MIB = 256
"""llama.cpp's prompt cache in memory, beyond the slots: the standing prompts of more characters, so
that a chat switching among three does not read a persona again."""


def llama_missing() -> ModelError:
    """What to do when llama.cpp (the ``xllamacpp`` package) is not installed."""
    needs = missing_extra(ModelError, "the offline model", "the xllamacpp package", "local")
    return ModelError(
        f"{needs} (or set [llm] base_url, or a key in the env variable [llm] api_key_env names)"
    )


@dataclass(slots=True)
class Answer:
    """What a streamed chat completion gave, filled in by llama.cpp's callback."""

    pieces: list[str] = field(default_factory=list)
    error: str | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    """Of the prompt tokens, those llama.cpp did not read again (its prompt cache had them)."""
    completion_tokens: int | None = None


class LlamaServer:
    """One GGUF loaded by llama.cpp with ``slots`` prompts side by side, ``context`` tokens each."""

    def __init__(self, server: Any, socket_dir: Path, key: str, saved_dir: Path) -> None:
        self._server = server
        self.socket_dir = socket_dir
        self._key = key
        self.saved_dir = saved_dir

    @classmethod
    def start(cls, path: Path, *, context: int, slots: int, threads: int, saved_dir: Path) -> LlamaServer:
        """Load ``path``; slot states are saved to and restored from ``saved_dir``."""
        try:
            import xllamacpp
        except ImportError as exc:
            raise llama_missing() from exc
        saved_dir.mkdir(parents=True, exist_ok=True)
        socket_dir = Path(tempfile.mkdtemp(prefix="roleplay-llm-"))
        key = secrets.token_urlsafe(32)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = context * slots
        params.n_parallel = slots
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.n_threads_http = 1
        params.warmup = False
        params.verbosity = -1  # llama.cpp logs every request to stderr; failures come back as errors
        params.cache_ram_mib = PROMPT_CACHE_MIB
        params.hostnames = [str(socket_dir / "llm.sock")]
        params.api_keys = [key]
        params.slot_save_path = f"{saved_dir}{os.sep}"
        try:
            server = xllamacpp.Server(params)
        except RuntimeError as exc:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise ModelError(
                f"cannot load the local model {path}: llama.cpp refused it ({exc}); "
                "is it a complete GGUF of an architecture llama.cpp runs?"
            ) from None
        return cls(server, socket_dir, key, saved_dir)

    @property
    def listening_address(self) -> str:
        return str(self._server.listening_address)

    def stream(self, request: dict[str, Any], stop: threading.Event, deadline: float) -> Answer:
        """Answer a chat-completions ``request``, streamed; it stops once ``stop`` is set or at ``deadline``
        (``time.monotonic``)."""
        answer = Answer()

        def take(chunk: dict[str, Any]) -> bool:
            """Called by llama.cpp with each piece; ``True`` stops the generation."""
            if "error" in chunk:
                error = chunk["error"]
                answer.error = str(error.get("message", error) if isinstance(error, dict) else error)
                return True
            for choice in chunk.get("choices") or ():
                if piece := (choice.get("delta") or {}).get("content"):
                    answer.pieces.append(piece)
            if timings := chunk.get("timings"):
                answer.cached_tokens = int(timings.get("cache_n", 0))
                answer.prompt_tokens = answer.cached_tokens + int(timings.get("prompt_n", 0))
                answer.completion_tokens = int(timings.get("predicted_n", 0))
            return stop.is_set() or time.monotonic() > deadline

        self._server.handle_chat_completions({**request, "stream": True}, take)
        return answer

    def slot(self, action: Literal["save", "restore"], slot: int, name: str, timeout_s: float) -> bool:
        """Save slot ``slot`` (the prompt it has read) to ``name`` in :attr:`saved_dir`, or restore it
        from there; ``False`` when it cannot (a restore of a damaged file also deletes it)."""
        if action == "restore" and not (self.saved_dir / name).is_file():
            return False
        transport = httpx.HTTPTransport(uds=str(self.socket_dir / "llm.sock"))
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            with httpx.Client(transport=transport, headers=headers, timeout=timeout_s) as client:
                response = client.post(f"http://llm/slots/{slot}?action={action}", json={"filename": name})
        except httpx.HTTPError as exc:
            log.warning("could not %s a standing prompt: %s", action, exc)
            return False
        if response.status_code != 200:
            log.warning("could not %s a standing prompt: %s", action, response.text[:200])
            if action == "restore":
                (self.saved_dir / name).unlink(missing_ok=True)  # damaged, or of another llama.cpp
            return False
        return True

    def close(self) -> None:
        """Stop llama.cpp (its destructor joins its loop thread) and remove the socket's folder."""
        self._server = None
        shutil.rmtree(self.socket_dir, ignore_errors=True)
