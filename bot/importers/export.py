"""Packs going out: the pack folder as a zip, and the character as a SillyTavern card.

:func:`export_card` writes a Character Card V3 (and a V2 copy for older readers). A pack imported from
a card keeps the card's ``data`` object in ``card.json``; the export starts from it, so fields the pack
has no use for (alternate greetings, tags, creator notes, ``extensions``) come back unchanged. Each
field the pack took from the card (persona, greeting, scenes, lorebook) is written back as the card had
it while the pack's version is still what that field gives on import, and from the pack once edited.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import ValidationError

from bot.engine.pack_schema import Lorebook, LoreEntry
from bot.engine.packs import LOREBOOK_FILE, CharacterPack
from bot.errors import PackError
from bot.extract.speakers import clean_speaker
from bot.importers.cards import (
    SPEC_V2,
    SPEC_V3,
    USER_SPEAKER,
    Card,
    build_persona,
    card_greeting,
    card_lore,
    card_scenes,
)
from bot.importers.drafts import CARD_FILE

_V3_FIELDS: dict[str, Any] = {
    "name": "",
    "description": "",
    "personality": "",
    "scenario": "",
    "first_mes": "",
    "mes_example": "",
    "creator_notes": "",
    "system_prompt": "",
    "post_history_instructions": "",
    "alternate_greetings": [],
    "tags": [],
    "creator": "",
    "character_version": "",
    "extensions": {},
    "group_only_greetings": [],
}
_V3_ONLY = frozenset(
    {
        "assets",
        "nickname",
        "creator_notes_multilingual",
        "source",
        "group_only_greetings",
        "creation_date",
        "modification_date",
    }
)
_PICTURE_SIZE = (400, 600)


def export_zip(pack: CharacterPack) -> bytes:
    """The pack folder as a zip, every path under ``<id>/`` (hidden files and links left out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as archive:
        for folder, dirnames, filenames in os.walk(pack.root):
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            for name in sorted(filenames):
                path = Path(folder) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                archive.write(path, f"{pack.id}/{path.relative_to(pack.root).as_posix()}")
    return buffer.getvalue()


def _original_card(pack: CharacterPack) -> dict[str, Any]:
    path = pack.root / CARD_FILE
    if not path.is_file():
        return {}
    try:
        data: Any = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise PackError(
            path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", line=exc.lineno
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(path, f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise PackError(path, "must hold the card's data object")
    return data


def _lorebook(pack: CharacterPack) -> list[LoreEntry]:
    """Every entry of ``lorebook.json``, disabled ones too (the loaded pack keeps only enabled ones)."""
    path = pack.root / LOREBOOK_FILE
    if not path.is_file():
        return []
    try:
        return Lorebook.model_validate_json(path.read_bytes()).entries
    except (OSError, ValidationError) as exc:
        raise PackError(path, f"cannot read the lorebook: {exc}") from None


def _same_lore(original: dict[str, Any], pack: CharacterPack, lore: list[LoreEntry]) -> bool:
    try:
        card = Card(original, SPEC_V3, pack.root / CARD_FILE)
        entries, _notes = card_lore(card, pack.name, pack.settings.language)
    except PackError:
        return False
    return entries == lore


def _book_entry(number: int, entry: LoreEntry) -> dict[str, Any]:
    return {
        "keys": list(entry.keys),
        "content": entry.content,
        "extensions": {},
        "enabled": entry.enabled,
        "insertion_order": entry.insertion_order,
        "case_sensitive": entry.case_sensitive,
        "constant": entry.constant,
        "name": entry.name,
        "comment": entry.name,
        "use_regex": False,
        "id": number,
    }


def mes_example(pack: CharacterPack) -> str:
    """The pack's scenes as SillyTavern example dialogue: ``<START>`` blocks of ``{{char}}:`` turns."""
    character = {pack.name, clean_speaker(pack.name) or pack.name, *pack.aliases}
    users = set(USER_SPEAKER.values())
    blocks = []
    for scene in pack.scenes:
        rows = ["<START>"]
        for line in scene.lines:
            who = (
                "{{char}}"
                if line.speaker in character
                else "{{user}}"
                if line.speaker in users
                else line.speaker
            )
            rows.append(f"{who}: {line.text}")
        blocks.append("\n".join(rows))
    return "\n".join(blocks)


def card_data(pack: CharacterPack) -> dict[str, Any]:
    """The V3 ``data`` object of the pack's character (see the module docstring for what comes from where)."""
    original = _original_card(pack)
    data = copy.deepcopy(original)
    name, language = pack.name, pack.settings.language
    if not original or build_persona(original, name, language) != pack.settings.persona.strip():
        data.update(description=pack.settings.persona.strip(), personality="", scenario="", system_prompt="")
    if not original or card_greeting(original, name, language) != pack.settings.greeting.strip():
        data["first_mes"] = pack.settings.greeting
    scenes = [[(line.speaker, line.text) for line in scene.lines] for scene in pack.scenes]
    if not original or card_scenes(original, name, language) != scenes:
        data["mes_example"] = mes_example(pack)
    lore = _lorebook(pack)
    if not original or not _same_lore(original, pack, lore):
        book = original.get("character_book")
        if lore:
            kept = (
                {key: value for key, value in book.items() if key != "entries"}
                if isinstance(book, dict)
                else {}
            )
            data["character_book"] = {**kept, "entries": [_book_entry(n, e) for n, e in enumerate(lore)]}
        else:
            data.pop("character_book", None)
    data["name"] = name
    for key, default in _V3_FIELDS.items():
        data.setdefault(key, copy.deepcopy(default))
    return data


def _picture(pack: CharacterPack) -> Image.Image:
    path = pack.avatar_path
    if path is not None and path.is_file():
        with Image.open(path) as image:
            image.load()
            return image.copy() if image.mode in {"RGB", "RGBA"} else image.convert("RGBA")
    digest = hashlib.sha1(pack.id.encode()).digest()
    return Image.new("RGB", _PICTURE_SIZE, (digest[0], digest[1], digest[2]))


def _encode(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def export_card(pack: CharacterPack, *, png: bool = True) -> bytes:
    """The character as a Character Card V3: a PNG (picture + ``ccv3`` and V2 ``chara`` chunks) or JSON."""
    data = card_data(pack)
    if not png:
        return json.dumps(
            {"spec": SPEC_V3, "spec_version": "3.0", "data": data}, ensure_ascii=False, indent=2
        ).encode()
    assets = data.get("assets")
    if not isinstance(assets, list) or not assets:
        data["assets"] = [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    else:
        data["assets"] = [
            {**asset, "uri": "ccdefault:"}
            if isinstance(asset, dict) and asset.get("type") == "icon"
            else asset
            for asset in assets
        ]
    v3 = {"spec": SPEC_V3, "spec_version": "3.0", "data": data}
    v2 = {
        "spec": SPEC_V2,
        "spec_version": "2.0",
        "data": {k: v for k, v in data.items() if k not in _V3_ONLY},
    }
    info = PngInfo()
    info.add_text("chara", _encode(v2))
    info.add_text("ccv3", _encode(v3))
    out = io.BytesIO()
    _picture(pack).save(out, "PNG", pnginfo=info)
    return out.getvalue()
