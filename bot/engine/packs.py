"""Character packs: loading, validation, and finding a pack by what people call it.

A pack is a folder (see README "Pack format")::

    characters/<id>/
      character.toml   name, aliases, language, persona, greeting, ...
      scenes/*.txt     one scene per file, one utterance per line: ``Speaker:「line」`` or ``Speaker: line``
      images/          screenshots of scenes
      images.jsonl     {"image": "images/0001.jpg", "text": "the line spoken in that frame"}
      voices/          optional: the character's own recorded lines (.ogg .opus .mp3 .wav .m4a)
      voices.jsonl     {"audio": "voices/0001.ogg", "text": "the line", "scene": "001"} (scene optional)
      lorebook.json    optional: {"entries": [{"keys": [...], "content": "...", ...}]} (see LoreEntry)

Every problem is a :class:`~bot.errors.PackError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.engine.pack_schema import Lorebook, LoreEntry, PackSettings, is_url
from bot.errors import PackError

log = logging.getLogger(__name__)

PACK_FILE = "character.toml"
IMAGES_FILE = "images.jsonl"
VOICES_FILE = "voices.jsonl"
LOREBOOK_FILE = "lorebook.json"
AVATAR_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
VOICE_SUFFIXES = frozenset({".ogg", ".opus", ".mp3", ".wav", ".m4a"})
PACK_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_UTTERANCE = re.compile(r"^(?P<speaker>[^:：「」\n]{1,40}?)\s*[:：]\s*(?P<text>.*\S)\s*$")


@dataclass(slots=True, frozen=True)
class Line:
    """One utterance of a scene."""

    speaker: str
    text: str

    def render(self) -> str:
        return f"{self.speaker}:「{self.text}」"


@dataclass(slots=True, frozen=True)
class Scene:
    """One classic scene of a character: a few lines of dialogue and narration."""

    id: str
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        """The scene in ChatHaruhi's layout, one ``Speaker:「line」`` per line."""
        return "\n".join(line.render() for line in self.lines)


@dataclass(slots=True, frozen=True)
class Screenshot:
    """A frame of a scene and the line spoken in it."""

    path: Path
    text: str


@dataclass(slots=True, frozen=True)
class VoiceClip:
    """The character's own recording of one line (cut from the video), and the line."""

    path: Path
    text: str
    scene: str = ""
    """The scene the line belongs to (its id), when known."""


@dataclass(slots=True)
class CharacterPack:
    """A loaded, validated character pack."""

    id: str
    root: Path
    settings: PackSettings
    scenes: list[Scene]
    screenshots: list[Screenshot]
    content_hash: str
    lore: list[LoreEntry] = field(default_factory=list)
    voices: list[VoiceClip] = field(default_factory=list)
    """Its own recorded lines (``voices.jsonl``), posted instead of synthesised speech when a reply
    matches one."""

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def aliases(self) -> list[str]:
        return self.settings.aliases

    @property
    def names(self) -> list[str]:
        """Every name people may use for the character: id, name and aliases."""
        return [self.id, self.name, *self.aliases]

    @property
    def description(self) -> str:
        return self.settings.description or self.settings.persona.strip().splitlines()[0][:80]

    @property
    def avatar_url(self) -> str | None:
        """The avatar when ``character.toml`` gives it as a URL."""
        avatar = self.settings.avatar
        return avatar if avatar is not None and is_url(avatar) else None

    @property
    def avatar_path(self) -> Path | None:
        """The avatar when it is a file in the pack (checked to exist when the pack loads)."""
        avatar = self.settings.avatar
        return self.root / avatar if avatar is not None and not is_url(avatar) else None


def parse_scene(path: Path, text: str) -> Scene:
    """Parse one scene file; a line that is not ``Speaker: line`` is an error naming its number."""
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip().lstrip("\ufeff")
        if not stripped:
            continue
        match = _UTTERANCE.match(stripped)
        if match is None:
            raise PackError(
                path, f"expected 'Speaker:「line」' or 'Speaker: line', got {stripped[:60]!r}", line=number
            )
        body = match["text"]
        if body.startswith("「") and body.endswith("」"):
            body = body[1:-1].strip()
        if not body:
            raise PackError(path, "the line is empty", line=number)
        lines.append(Line(match["speaker"].strip(), body))
    if not lines:
        raise PackError(path, "the scene has no lines")
    return Scene(path.stem, tuple(lines))


def _load_settings(path: Path) -> PackSettings:
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        raise PackError(path, f"missing {PACK_FILE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(path, f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise PackError(path, f"invalid TOML: {getattr(exc, 'msg', exc)}", line=line) from None
    try:
        return PackSettings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "?"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        if key == "llm.api_key":
            # NOTE: a pack is shared and exported whole: a key written into it would travel with it.
            message += "; put the key in an env variable and name it with api_key_env"
        raise PackError(path, f"{key}: {message}", line=_line_of_location(raw, error["loc"])) from None


def _load_lorebook(root: Path) -> list[LoreEntry]:
    path = root / LOREBOOK_FILE
    if not path.exists():
        return []
    try:
        book = Lorebook.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the file"
        raise PackError(path, f"{where}: {error['msg']}") from None
    return [entry for entry in book.entries if entry.enabled]


def _check_avatar(root: Path, settings: PackSettings) -> None:
    if settings.avatar is None or is_url(settings.avatar):
        return
    path = root / PACK_FILE
    line = _line_of_key(path.read_text("utf-8"), "avatar")
    avatar = (root / settings.avatar).resolve()
    if not avatar.is_relative_to(root.resolve()):
        raise PackError(path, f"avatar {settings.avatar!r} lies outside the pack", line=line)
    if not avatar.is_file():
        raise PackError(path, f"avatar {settings.avatar!r} does not exist", line=line)
    if avatar.suffix.lower() not in AVATAR_SUFFIXES:
        raise PackError(
            path, f"avatar {settings.avatar!r} must be a {', '.join(sorted(AVATAR_SUFFIXES))} file", line=line
        )


def _line_of_location(raw: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of the key a validation error names: ``name = …`` at the top, or ``model = …``
    inside ``[llm]`` (the table's header when the key is missing or the whole table is wrong)."""
    if not loc:
        return None
    top = _line_of_key(raw, str(loc[0]))
    if top is not None or len(loc) < 2:
        return top
    lines = raw.splitlines()
    header = re.compile(rf"^\s*\[\s*{re.escape(str(loc[0]))}\s*\]")
    start = next((n for n, line in enumerate(lines, 1) if header.match(line)), None)
    if start is None:
        return None
    table: list[str] = []
    for line in lines[start:]:
        if line.lstrip().startswith("["):
            break
        table.append(line)
    inner = _line_of_key("\n".join(table), str(loc[1]))
    return start + inner if inner is not None else start


def _line_of_key(raw: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((n for n, line in enumerate(raw.splitlines(), 1) if pattern.match(line)), None)


def json_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """The values of a JSON-lines text with their line numbers; blank lines are skipped.

    Lines are split at ``\n`` only: ``str.splitlines`` would also split inside a string holding
    U+2028 or a form feed, which JSON allows unescaped.
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PackError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=number) from None


def _utf8(path: Path) -> str:
    """The text of a pack file; bytes that are not UTF-8 are a :class:`PackError` naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackError(path, "not UTF-8 text", line=data[: exc.start].count(b"\n") + 1) from None


def _load_screenshots(root: Path) -> list[Screenshot]:
    path = root / IMAGES_FILE
    if not path.exists():
        return []
    shots: list[Screenshot] = []
    for number, entry in json_lines(path, _utf8(path)):
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise PackError(path, 'each line must be an object with "image" and "text"', line=number)
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PackError(path, '"text" must be the non-empty line spoken in the frame', line=number)
        image = (root / entry["image"]).resolve()
        if not image.is_relative_to(root.resolve()):
            raise PackError(path, f"image {entry['image']!r} lies outside the pack", line=number)
        if not image.is_file():
            raise PackError(path, f"image {entry['image']!r} does not exist", line=number)
        shots.append(Screenshot(image, text.strip()))
    return shots


def _load_voices(root: Path) -> list[VoiceClip]:
    """The clips ``voices.jsonl`` lists; ``scene``, when given, must be the id of one of the pack's scenes."""
    path = root / VOICES_FILE
    if not path.exists():
        return []
    scene_ids = {scene.stem for scene in (root / "scenes").glob("*.txt")}
    clips: list[VoiceClip] = []
    for number, entry in json_lines(path, _utf8(path)):
        if not isinstance(entry, dict) or not isinstance(entry.get("audio"), str):
            raise PackError(path, 'each line must be an object with "audio" and "text"', line=number)
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PackError(path, '"text" must be the non-empty line spoken in the clip', line=number)
        scene = entry.get("scene", "")
        if not isinstance(scene, str):
            raise PackError(path, '"scene" must be the id of a scene file, e.g. "001"', line=number)
        if scene and scene not in scene_ids:
            raise PackError(
                path,
                f"scene {scene!r} is not a scene of the pack: give a scene file's name without .txt "
                '("001" for scenes/001.txt)',
                line=number,
            )
        audio = (root / entry["audio"]).resolve()
        if not audio.is_relative_to(root.resolve()):
            raise PackError(path, f"audio {entry['audio']!r} lies outside the pack", line=number)
        if audio.suffix.lower() not in VOICE_SUFFIXES:
            raise PackError(
                path,
                f"audio {entry['audio']!r} must be a {', '.join(sorted(VOICE_SUFFIXES))} file",
                line=number,
            )
        if not audio.is_file():
            raise PackError(path, f"audio {entry['audio']!r} does not exist", line=number)
        clips.append(VoiceClip(audio, text.strip(), scene))
    return clips


def load_pack(root: Path) -> CharacterPack:
    """Load and validate the pack in ``root``; raise :class:`PackError` on the first problem."""
    pack_id = root.name
    if not PACK_ID.match(pack_id):
        raise PackError(root, "the folder name is the pack id: use lowercase letters, digits, '-' or '_'")
    settings = _load_settings(root / PACK_FILE)
    _check_avatar(root, settings)
    scene_files = sorted((root / "scenes").glob("*.txt"))
    if not scene_files:
        raise PackError(root / "scenes", "no scene files (scenes/*.txt)")
    digest = hashlib.sha256((root / PACK_FILE).read_bytes())
    scenes: list[Scene] = []
    for path in scene_files:
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise PackError(path, "not UTF-8 text", line=line) from None
        digest.update(path.name.encode() + b"\0" + data)
        scenes.append(parse_scene(path, text))
    if (root / IMAGES_FILE).exists():
        digest.update((root / IMAGES_FILE).read_bytes())
    screenshots = _load_screenshots(root)
    if (root / VOICES_FILE).exists():
        digest.update(VOICES_FILE.encode() + b"\0" + (root / VOICES_FILE).read_bytes())
    voices = _load_voices(root)
    lore = _load_lorebook(root)
    if (root / LOREBOOK_FILE).exists():
        digest.update((root / LOREBOOK_FILE).read_bytes())
    return CharacterPack(
        pack_id, root, settings, scenes, screenshots, digest.hexdigest()[:16], lore, voices=voices
    )


@dataclass(slots=True)
class PackLoadReport:
    """What :func:`load_packs` found: the packs that loaded and the errors of those that did not."""

    packs: list[CharacterPack] = field(default_factory=list)
    errors: list[PackError] = field(default_factory=list)


def pack_dirs(directory: Path) -> Iterator[Path]:
    """The pack folders under ``directory`` (folders starting with ``.`` or ``_`` are skipped)."""
    if not directory.is_dir():
        return
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "_")):
            yield child


def load_packs(directory: Path) -> PackLoadReport:
    """Load every pack under ``directory``; a broken pack is reported and the others still load."""
    report = PackLoadReport()
    for root in pack_dirs(directory):
        try:
            report.packs.append(load_pack(root))
        except PackError as exc:
            log.error("character pack refused: %s", exc)
            report.errors.append(exc)
    return report
