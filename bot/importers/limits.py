"""How much an import may read, and the checks that hold every input to it.

Imported files come from strangers (a card downloaded from a sharing site, a zip posted in a chat), so
every read is bounded before it happens: a file's size is checked before it is read, an archive's
entries before any is unpacked, an image's pixel count before it is decoded.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from bot.errors import ExtractError, PackError
from bot.extract.textfiles import read_text


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Bounds on what one import reads.

    ``max_file_bytes`` holds each single file: a card, a transcript, a jsonl, each entry of an archive
    or folder. An archive as a whole (and a folder) is held by ``max_unpacked_bytes`` and
    ``max_archive_files``. ``max_image_pixels`` is checked before any image is decoded.
    """

    max_file_bytes: int = 20_000_000
    max_archive_files: int = 2000
    max_unpacked_bytes: int = 200_000_000
    max_image_pixels: int = 40_000_000


DEFAULT_LIMITS = ImportLimits()


def check_size(path: Path, size: int, limit: int, what: str = "the file") -> None:
    """Refuse ``size`` bytes over ``limit``, saying which limit it is."""
    if size > limit:
        raise PackError(path, f"{what} is {size:,} bytes, over the import limit of {limit:,} bytes")


def check_file(path: Path, limits: ImportLimits) -> None:
    """Refuse a missing file, or one over ``limits.max_file_bytes``, before anything reads it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PackError(path, "no such file") from None
    except OSError as exc:
        raise PackError(path, f"cannot read: {exc.strerror or exc}") from None
    check_size(path, size, limits.max_file_bytes)


def read_bytes(path: Path, limits: ImportLimits) -> bytes:
    """The bytes of ``path``, refused before reading when the file is over the limit."""
    check_file(path, limits)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PackError(path, f"cannot read: {exc.strerror or exc}") from None


_WHERE = re.compile(r"^:(?:(?P<line>\d+):)?\s*(?P<reason>.*)$", re.DOTALL)


@contextmanager
def as_pack_errors(path: Path) -> Iterator[None]:
    """Report the text readers' :class:`ExtractError` (``path:line: reason``) as a :class:`PackError`."""
    try:
        yield
    except ExtractError as exc:
        match = _WHERE.match(str(exc).removeprefix(str(path)))
        if match is None:
            raise PackError(path, str(exc)) from None
        line = int(match["line"]) if match["line"] else None
        raise PackError(path, match["reason"], line=line) from None


def read_source_text(path: Path, limits: ImportLimits) -> str:
    """The text of ``path`` in whatever encoding it was saved (UTF-8, BOM, GBK, GB18030, UTF-16).

    Chinese stays exactly as written: Traditional is not turned into Simplified or back.
    """
    check_file(path, limits)
    with as_pack_errors(path):
        text = read_text(path)
    return text


def open_image(data: bytes, where: Path, limits: ImportLimits) -> Image.Image:
    """An image opened (not yet decoded) after its pixel count is checked against the limit.

    Pillow refuses images beyond twice its own ``MAX_IMAGE_PIXELS`` as decompression bombs (and warns
    above it); both are turned into a :class:`PackError`, and so is anything over
    ``limits.max_image_pixels``, which is checked before the pixels are decoded.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PackError(where, f"the image is too large to decode safely: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PackError(where, f"not an image that can be read: {exc}") from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        image.close()
        raise PackError(
            where,
            f"the image is {width}x{height} = {width * height:,} pixels, over the import limit of "
            f"{limits.max_image_pixels:,} pixels",
        )
    return image


def check_image(data: bytes, where: Path, limits: ImportLimits) -> None:
    """Refuse an image whose header promises more pixels than the limit (nothing is decoded)."""
    open_image(data, where, limits).close()


def reencode_png(data: bytes, where: Path, limits: ImportLimits) -> tuple[bytes, tuple[int, int]]:
    """``data`` decoded and written again as a plain PNG (metadata chunks, cards included, dropped)."""
    with open_image(data, where, limits) as image:
        try:
            image.load()
            converted = image if image.mode in {"RGB", "RGBA"} else image.convert("RGBA")
            out = io.BytesIO()
            converted.save(out, "PNG")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise PackError(where, f"the image cannot be decoded: {exc}") from None
        return out.getvalue(), image.size
