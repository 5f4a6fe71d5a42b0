"""Reading text files in whatever encoding fansubs and transcripts come in.

Subtitles are often not UTF-8: Chinese fansubs are commonly GBK/GB18030 or Big5, Windows tools write
UTF-16 with a BOM, old English SRT files are cp1252. A wrong guess would put mojibake into the pack,
so the order is: a byte-order mark, then UTF-16 recognised by its zero bytes, then strict UTF-8, then
charset-normalizer's best guess; only when all of them fail is the file refused.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from bot.errors import ExtractError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 of mostly ASCII (timings, tags) has a zero in every other byte; the rest is for the guess."""
    sample = data[:4000]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.3 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.3 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def detect_encoding(data: bytes) -> str | None:
    """The encoding ``data`` is most likely in, or ``None`` when it does not look like text at all."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    guess = _utf16_without_bom(data)
    if guess is not None:
        return guess
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    best = from_bytes(data).best()
    return None if best is None else str(best.encoding)


def read_text(path: Path, encoding: str | None = None) -> str:
    """The text of ``path``, decoded with ``encoding`` or a detected one; BOM and ``\\r`` removed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExtractError(f"{path}: no such file") from None
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise ExtractError(f"{path}: the file is empty")
    chosen = encoding or detect_encoding(data)
    if chosen is None:
        raise ExtractError(f"{path}: cannot tell the text encoding (is it a text file?); save it as UTF-8")
    try:
        text = data.decode(chosen)
    except LookupError:
        raise ExtractError(f"{path}: unknown encoding {chosen!r}") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExtractError(f"{path}:{line}: not valid {chosen} text; save the file as UTF-8") from None
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
