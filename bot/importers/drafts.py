"""A pack about to be written: what every converter produces, and how it becomes files.

Converters of foreign formats (cards, ChatHaruhi data, transcripts) fill a :class:`PackDraft`; only
:meth:`PackDraft.write` knows the pack layout, so every importer writes ``character.toml``, scenes and
``lorebook.json`` the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.pack_schema import LoreEntry
from bot.engine.packs import LOREBOOK_FILE, PACK_FILE, PACK_ID
from bot.extract.speakers import Language, clean_speaker
from bot.extract.writer import character_toml

AVATAR_FILE = "images/avatar.png"
CARD_FILE = "card.json"
"""The original card's ``data`` object, kept so an export gives back every field the pack has no use for."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text safe to write: ``\\r\\n`` → ``\\n``, control characters and lone surrogates removed."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def toml_string(value: str) -> str:
    """A one-line TOML basic string (JSON's escapes are valid TOML; non-ASCII stays readable)."""
    return json.dumps(clean_text(value), ensure_ascii=False)


def toml_multiline(value: str) -> str:
    """A multi-line TOML basic string, so a long persona stays readable and editable in the file."""
    body = clean_text(value).strip("\n").replace("\\", "\\\\").replace('"""', '""\\"')
    return f'"""\n{body}\n"""'


def placeholder_persona(name: str, language: Language) -> str:
    """The extraction tool's persona for a character with none: it says plainly that it must be edited."""
    persona: str = tomllib.loads(character_toml(name, [], language, ""))["persona"]
    return persona.strip()


def one_line(text: str, limit: int = 100) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters (at a space when there is one)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def counted(number: int, one: str, many: str) -> str:
    """``1 scene`` / ``3 scenes``."""
    return f"{number} {one if number == 1 else many}"


def scene_line(speaker: str, text: str) -> str | None:
    """One scene line, ``Speaker:「text」``; ``None`` when the speaker or the text is empty."""
    name = clean_speaker(speaker)
    words = " ".join(clean_text(text).split())
    if name is None or not words:
        return None
    return f"{name}:「{words}」"


def slug_id(name: str) -> str | None:
    """``name`` as a pack id (lowercase ASCII letters, digits, ``-``), or ``None`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:32].strip("-")
    return slug if slug and PACK_ID.match(slug) else None


def pack_id_for(name: str) -> str:
    """The default pack id of a character: its name as a slug, or ``char-<hash>`` for a name like 苏小满.

    No transliteration: a pinyin guess would be wrong for some names, and a stable hash never is.
    """
    return slug_id(name) or f"char-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def first_word_alias(name: str) -> list[str]:
    """``["Wren"]`` for ``"Wren Calloway"``; no alias for a one-word name."""
    words = name.split()
    return [words[0]] if len(words) > 1 else []


@dataclass(slots=True)
class PackDraft:
    """Everything a converter found, before it is written as a pack folder."""

    name: str
    language: Language
    scenes: list[list[str]]
    """Each scene as its lines, already in the ``Speaker:「line」`` form (see :func:`scene_line`)."""
    persona: str | None = None
    """``None`` when the source has none: the pack gets the extraction tool's placeholder."""
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    greeting: str = ""
    lore: list[LoreEntry] = field(default_factory=list)
    avatar_png: bytes | None = None
    avatar_url: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    """Other files of the pack, by path relative to its root (``card.json``)."""
    notes: list[str] = field(default_factory=list)

    def settings_toml(self) -> str:
        persona = self.persona if self.persona and self.persona.strip() else None
        rows = [
            f"name = {toml_string(self.name[:64])}",
            f"aliases = [{', '.join(toml_string(alias) for alias in dict.fromkeys(self.aliases) if alias)}]",
            f"language = {toml_string(self.language)}",
            f"description = {toml_string(self.description)}",
            f"greeting = {toml_string(self.greeting)}",
        ]
        if self.avatar_png is not None:
            rows.append(f"avatar = {toml_string(AVATAR_FILE)}")
        elif self.avatar_url is not None:
            rows.append(f"avatar = {toml_string(self.avatar_url)}")
        rows.append(f"persona = {toml_multiline(persona or placeholder_persona(self.name, self.language))}")
        return "\n".join(rows) + "\n"

    def write(self, root: Path) -> None:
        """Write the pack into the empty folder ``root`` (validation is the caller's next step)."""
        (root / "scenes").mkdir(parents=True)
        (root / "images").mkdir()
        (root / PACK_FILE).write_text(self.settings_toml(), encoding="utf-8")
        scenes = [scene for scene in self.scenes if scene]
        width = max(3, len(str(len(scenes))))
        for number, lines in enumerate(scenes, start=1):
            text = "\n".join(lines) + "\n"
            (root / "scenes" / f"{number:0{width}d}.txt").write_text(text, encoding="utf-8")
        if self.lore:
            book = {"entries": [entry.model_dump() for entry in self.lore]}
            (root / LOREBOOK_FILE).write_text(
                json.dumps(book, ensure_ascii=False, indent=2), encoding="utf-8"
            )
        if self.avatar_png is not None:
            (root / AVATAR_FILE).write_bytes(self.avatar_png)
        for relative, data in self.files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(data)
