"""Reading character cards from the files they come in: a PNG with the card in a ``ccv3`` (V3) or
``chara`` (V2) text chunk, a JSON file, or a CHARX zip with ``card.json`` and its assets; each becomes
a pack draft through :mod:`bot.importers.cards`."""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

from bot.errors import PackError
from bot.importers.archives import SafeZip
from bot.importers.cards import (
    CARD_CHUNKS,
    PNG_SIGNATURE,
    Card,
    card_draft,
    parse_card,
)
from bot.importers.drafts import (
    PackDraft,
    counted,
)
from bot.importers.limits import ImportLimits, read_bytes, read_source_text, reencode_png

EMBEDDED_PREFIXES = ("embeded://", "embedded://", "__asset:")
"""How a CHARX card names an asset inside its own zip."""


def _inflate(body: bytes, path: Path, limits: ImportLimits) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, limits.max_file_bytes + 1)
    except zlib.error as exc:
        raise PackError(path, f"a compressed PNG text chunk cannot be read: {exc}") from None
    if len(out) > limits.max_file_bytes or inflater.unconsumed_tail:
        raise PackError(path, f"a compressed PNG text chunk unpacks to over {limits.max_file_bytes:,} bytes")
    return out


def png_card_chunks(data: bytes, path: Path, limits: ImportLimits) -> dict[str, str]:
    """The ``ccv3`` / ``chara`` text chunks of a PNG (tEXt, zTXt or iTXt), read without decoding pixels."""
    if not data.startswith(PNG_SIGNATURE):
        raise PackError(path, "not a PNG file")
    found: dict[str, str] = {}
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) < length:
            raise PackError(
                path, f"the PNG is truncated (chunk {kind.decode('latin-1')!r} at byte {position})"
            )
        position += 12 + length
        if kind == b"IEND":
            break
        if kind not in {b"tEXt", b"zTXt", b"iTXt"}:
            continue
        keyword, _, rest = body.partition(b"\0")
        key = keyword.decode("latin-1").lower()
        if key not in CARD_CHUNKS:
            continue
        if kind == b"tEXt":
            found[key] = rest.decode("latin-1")
        elif kind == b"zTXt":
            found[key] = _inflate(rest[1:], path, limits).decode("latin-1")
        else:
            compressed = rest[:1] == b"\1"
            _language, _, rest = rest[2:].partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            raw = _inflate(text, path, limits) if compressed else text
            found[key] = raw.decode("utf-8", "replace")
    return found


def _decode_payload(payload: str, path: Path, chunk: str) -> str:
    text = payload.strip()
    if text.startswith("{"):
        return text
    try:
        return base64.b64decode(text).decode("utf-8").lstrip("\ufeff")
    except (binascii.Error, ValueError) as exc:
        raise PackError(path, f"chunk {chunk!r} is not base64 of UTF-8 JSON: {exc}") from None


def import_card_png(source: Path, limits: ImportLimits) -> PackDraft:
    """A card PNG: the card from its ``ccv3`` (preferred) or ``chara`` chunk, the picture as avatar."""
    data = read_bytes(source, limits)
    chunks = png_card_chunks(data, source, limits)
    chunk = next((key for key in CARD_CHUNKS if key in chunks), None)
    if chunk is None:
        raise PackError(source, "the PNG holds no character card (no 'ccv3' or 'chara' text chunk)")
    card = parse_card(
        _decode_payload(chunks[chunk], source, chunk), source, where=f"chunk {chunk!r}: ", line_numbers=False
    )
    draft = card_draft(card)
    draft.avatar_png, size = reencode_png(data, source, limits)
    draft.notes[0] += f" (PNG chunk {chunk!r})"
    draft.notes.append(f"avatar {size[0]}x{size[1]} from the card picture")
    return draft


def _icon(card: Card) -> str | None:
    """The URI of the card's main icon asset (V3 ``assets``), if it names one."""
    assets = card.data.get("assets")
    if not isinstance(assets, list):
        return None
    icons = [asset for asset in assets if isinstance(asset, Mapping) and asset.get("type") == "icon"]
    icons.sort(key=lambda asset: asset.get("name") != "main")
    uri = icons[0].get("uri") if icons else None
    return uri if isinstance(uri, str) else None


def _use_icon(
    draft: PackDraft,
    uri: str | None,
    source: Path,
    limits: ImportLimits,
    archived: Callable[[str], bytes | None],
) -> None:
    if uri is None or uri.startswith("ccdefault:"):
        draft.notes.append("no avatar: the card names no picture of its own")
        return
    if uri.startswith("https://"):
        draft.avatar_url = uri
        draft.notes.append(f"avatar: {uri} (not downloaded)")
        return
    if uri.startswith("data:") and ";base64," in uri:
        try:
            image = base64.b64decode(uri.split(";base64,", 1)[1])
        except (binascii.Error, ValueError) as exc:
            raise PackError(source, f"the icon asset's data: URI is not valid base64: {exc}") from None
        draft.avatar_png, size = reencode_png(image, source, limits)
        draft.notes.append(f"avatar {size[0]}x{size[1]} from the icon asset")
        return
    inner = next((uri[len(prefix) :] for prefix in EMBEDDED_PREFIXES if uri.startswith(prefix)), uri)
    inner = inner.lstrip("/")
    packed = archived(inner)
    if packed is None:
        draft.notes.append(f"no avatar: the icon asset {uri!r} is not in {source.name}")
        return
    draft.avatar_png, size = reencode_png(packed, source / inner, limits)
    draft.notes.append(f"avatar {size[0]}x{size[1]} from {inner}")


def import_card_json(source: Path, limits: ImportLimits) -> PackDraft:
    """A card saved as JSON (V1 flat, or V2/V3 with ``spec`` and ``data``)."""
    card = parse_card(read_source_text(source, limits), source)
    draft = card_draft(card)
    _use_icon(draft, _icon(card), source, limits, lambda _name: None)
    return draft


def import_charx(source: Path, limits: ImportLimits) -> PackDraft:
    """A CHARX archive: ``card.json`` at the root, the avatar from the asset of type ``icon``."""
    with SafeZip(source, limits) as archive:
        member = archive.get("card.json")
        if member is None:
            raise PackError(source, "a CHARX archive needs card.json at its root")
        try:
            raw = archive.read(member).decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise PackError(source, f"card.json is not UTF-8 text (byte {exc.start})") from None
        card = parse_card(raw, source, where="card.json: ", line_numbers=False)
        draft = card_draft(card)
        draft.notes[0] += " (CHARX)"

        def archived(name: str) -> bytes | None:
            found = archive.get(name)
            return None if found is None else archive.read(found)

        _use_icon(draft, _icon(card), source, limits, archived)
        others = len(archive.members) - 1 - (draft.avatar_png is not None)
        if others > 0:
            draft.notes.append(
                f"{counted(others, 'other asset', 'other assets')} in the archive not imported"
            )
    return draft
