"""Changes to a pack's files made in the console, checked by the pack loader before they are written.

A :class:`PackEdit` is a set of whole files to write and files to delete, named relative to the pack
folder by this module (never by the browser). :func:`check` applies it to a copy of the pack in a
hidden folder beside it (``characters/.edit-*``: the loader skips folders starting with ``.``) and loads
the copy with :func:`~bot.engine.packs.load_pack`; a :class:`~bot.errors.PackError` there names the
pack's own file and line, and the pack is untouched. :meth:`PackEdit.apply` then writes the pack
itself, each file whole (a temporary file renamed over it); the caller reloads it through the catalog.

The builders (:func:`settings_edit`, :func:`scene_edit`, :func:`caption_edit`, …) read the pack's files
as they are on disk and return the edit; they block, so callers run them in a thread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.packs import IMAGES_FILE, PACK_FILE, load_pack
from bot.errors import PackError
from bot.importers.drafts import clean_text, toml_multiline, toml_string
from bot.importers.limits import ImportLimits, open_image

SETTINGS_KEYS = ("persona", "aliases", "description", "greeting", "deflection")
"""The keys of ``character.toml`` the console edits; every other key and comment stays as written."""
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
"""The screenshot formats taken, by what Pillow reads in the file (its name is not trusted)."""
_HEADER = re.compile(r"^\s*\[")
_NUMBERED = re.compile(r"^\d+$")

Value = str | list[str]


@dataclass(slots=True)
class PackEdit:
    """Files to write (whole) and to delete, relative to the pack folder."""

    writes: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.writes or self.deletes)

    def apply(self, root: Path) -> None:
        """Write the edit into ``root``; a path that would leave the folder is refused first."""
        base = root.resolve()
        for name in [*self.writes, *self.deletes]:
            target = (root / name).resolve()
            if target == base or not target.is_relative_to(base):
                raise PackError(root / name, "lies outside the pack")
        for name, data in self.writes.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            # NOTE: a new file renamed over the old one, never a write into it: the checked copy
            # shares the pack's files through hard links, and a reader never sees half a file.
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".edit-", delete=False) as out:
                out.write(data)
            os.replace(out.name, path)
        for name in self.deletes:
            (root / name).unlink(missing_ok=True)


def check(root: Path, edit: PackEdit) -> None:
    """Load the pack in ``root`` as it would be after ``edit``, without touching ``root``.

    Raises the loader's :class:`PackError`, its path turned into the pack's own file.
    """
    work = Path(tempfile.mkdtemp(prefix=".edit-", dir=root.parent))
    try:
        copy = work / root.name
        shutil.copytree(root, copy, copy_function=_link_or_copy)
        edit.apply(copy)
        try:
            load_pack(copy)
        except PackError as exc:
            path = root / exc.path.relative_to(copy) if exc.path.is_relative_to(copy) else exc.path
            raise PackError(path, exc.reason, line=exc.line) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def shown(error: PackError, root: Path) -> str:
    """``scenes/002.txt:3: reason``: the error with its path inside the pack."""
    path = error.path.relative_to(root).as_posix() if error.path.is_relative_to(root) else error.path.name
    line = f":{error.line}" if error.line is not None else ""
    return f"{path or root.name}{line}: {error.reason}"


# ---------------------------------------------------------------------------------------- character.toml


def lines_of(text: str) -> list[str]:
    """A textarea's lines, stripped, blank ones dropped, each once."""
    return list(dict.fromkeys(line.strip() for line in clean_text(text).split("\n") if line.strip()))


def settings_values(raw: str) -> dict[str, Value]:
    """The edited keys as ``character.toml`` holds them (a one-line ``deflection`` as a list)."""
    data = tomllib.loads(raw)
    values: dict[str, Value] = {}
    for key in SETTINGS_KEYS:
        value = data.get(key, [] if key in {"aliases", "deflection"} else "")
        values[key] = [value] if key == "deflection" and isinstance(value, str) else value
    return values


def settings_edit(root: Path, wanted: Mapping[str, Value]) -> PackEdit:
    """``character.toml`` with the keys of ``wanted`` (of :data:`SETTINGS_KEYS`) changed."""
    path = root / PACK_FILE
    raw = path.read_text("utf-8")
    persona = wanted.get("persona")
    if isinstance(persona, str) and not persona.strip():
        raise PackError(
            path, "persona: say who the character is and how they talk", line=_line_of(raw, "persona")
        )
    text = with_values(path, raw, wanted)
    return PackEdit({PACK_FILE: text.encode("utf-8")}) if text != raw else PackEdit()


def with_values(path: Path, raw: str, wanted: Mapping[str, Value]) -> str:
    """``raw`` (a ``character.toml``) with top-level keys set to ``wanted``, the rest of the text as it was.

    Each changed key's statement (however many lines its value takes) is replaced by a new one; a key the
    file lacks is added before its first table. Unchanged keys are left alone, so is everything else.
    """
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(path, f"invalid TOML: {exc}") from None
    before = settings_values(raw)
    lines = raw.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    expected = dict(data)
    for key, value in wanted.items():
        if _same(before.get(key), value):
            continue
        statement = f"{key} = {_toml_value(key, value)}\n"
        expected[key] = tomllib.loads(statement)[key]
        if key not in data:
            top = _top_level_end(lines)
            while top < len(lines) and top > 0 and not lines[top - 1].strip():
                top -= 1
            lines[top:top] = [statement]
        elif (span := _statement_of(lines, key, data)) is not None:
            lines[span[0] : span[1]] = [statement]
        else:
            raise PackError(path, f"{key}: written in a way this page cannot change; edit the file by hand")
    text = "".join(lines)
    try:
        same = tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        same = False
    if not same:
        raise PackError(
            path, "cannot change this file here without changing more than asked: edit it by hand"
        )
    return text


def _same(old: Value | None, new: Value) -> bool:
    if isinstance(old, str) and isinstance(new, str):
        return old.strip() == new.strip()
    return old == new


def _toml_value(key: str, value: Value) -> str:
    if isinstance(value, str):
        return toml_multiline(value) if key == "persona" or "\n" in value else toml_string(value)
    items = [toml_string(item) for item in value]
    one_line = f"[{', '.join(items)}]"
    if len(one_line) + len(key) <= 100:
        return one_line
    return "[\n" + "".join(f"    {item},\n" for item in items) + "]"


def _statement_of(lines: Sequence[str], key: str, data: Mapping[str, object]) -> tuple[int, int] | None:
    """The lines ``[start, end)`` of the top-level statement setting ``key``, found by parsing."""
    opens = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
    for start in range(_top_level_end(lines)):
        if not opens.match(lines[start]):
            continue
        for end in range(start + 1, len(lines) + 1):
            try:
                parsed = tomllib.loads("".join(lines[start:end]))
            except tomllib.TOMLDecodeError:
                continue
            if parsed == {key: data[key]}:
                return start, end
            break
    return None


def _top_level_end(lines: Sequence[str]) -> int:
    """The index of the first table header (not one inside a multi-line string), or the end."""
    for index, line in enumerate(lines):
        if _HEADER.match(line):
            try:
                tomllib.loads("".join(lines[:index]))
            except tomllib.TOMLDecodeError:
                continue
            return index
    return len(lines)


def _line_of(raw: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((n for n, line in enumerate(raw.splitlines(), 1) if pattern.match(line)), None)


# ---------------------------------------------------------------------------------------- scenes


def scene_files(root: Path) -> list[Path]:
    """The pack's scene files, in the loader's order."""
    return sorted((root / "scenes").glob("*.txt"))


def scene_text(text: str) -> bytes:
    """A scene as a textarea sent it, as the file holds it: ``\\n`` line ends, one at the end."""
    return (clean_text(text).strip("\n") + "\n").encode("utf-8")


def scene_edit(root: Path, scene: str, text: str, *, delete: bool = False) -> PackEdit:
    """Save (or delete) the scene named ``scene`` (a file's name without ``.txt``); ``""`` adds one."""
    if not scene:
        return PackEdit({f"scenes/{new_scene_name(root)}.txt": scene_text(text)})
    path = next((file for file in scene_files(root) if file.stem == scene), None)
    if path is None:
        raise PackError(root / "scenes", f"no scene {scene!r}: it was removed meanwhile; reload the page")
    name = f"scenes/{path.name}"
    return PackEdit(deletes=[name]) if delete else PackEdit({name: scene_text(text)})


def new_scene_name(root: Path) -> str:
    """The next free number, as wide as the numbered scenes already there (``004`` after ``003``)."""
    stems = [file.stem for file in scene_files(root)]
    numbered = [stem for stem in stems if _NUMBERED.match(stem)]
    width = max((len(stem) for stem in numbered), default=3)
    number = max((int(stem) for stem in numbered), default=0) + 1
    while f"{number:0{width}d}" in stems:
        number += 1
    return f"{number:0{width}d}"


# ---------------------------------------------------------------------------------------- screenshots


@dataclass(slots=True, frozen=True)
class Shot:
    """One line of ``images.jsonl``: the frame's file as written there, and its caption."""

    line: int
    image: str
    caption: str
    path: Path


def screenshots(root: Path) -> list[Shot]:
    """The screenshots ``images.jsonl`` lists, with their line numbers (a line that does not read,
    edited by hand since the pack loaded, is left out: saving shows the loader's word on it)."""
    shots: list[Shot] = []
    for number, raw in enumerate(_listing(root), start=1):
        try:
            entry = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("image"), str):
            image = entry["image"]
            shots.append(Shot(number, image, str(entry.get("text", "")), (root / image).resolve()))
    return shots


def _listing(root: Path) -> list[str]:
    """The lines of ``images.jsonl``, split as the loader splits them (at ``\n`` only)."""
    path = root / IMAGES_FILE
    return path.read_text("utf-8", errors="replace").split("\n") if path.exists() else []


def _entry_at(root: Path, listing: list[str], line: int, image: str) -> dict[str, object]:
    """The entry on ``line``, checked to still name ``image`` (the page may be old)."""
    stale = PackError(root / IMAGES_FILE, "the screenshots changed meanwhile: reload the page", line=line)
    if not 1 <= line <= len(listing) or not listing[line - 1].strip():
        raise stale
    try:
        entry = json.loads(listing[line - 1])
    except json.JSONDecodeError:
        raise stale from None
    if not isinstance(entry, dict) or entry.get("image") != image:
        raise stale
    return entry


def _listing_bytes(listing: list[str]) -> bytes:
    text = "\n".join(listing).strip("\n")
    return (text + "\n").encode("utf-8") if text else b""


def caption_edit(root: Path, line: int, image: str, caption: str) -> PackEdit:
    """The screenshot on ``line`` with a new caption (its other fields kept)."""
    listing = _listing(root)
    entry = _entry_at(root, listing, line, image)
    entry["text"] = " ".join(clean_text(caption).split())
    listing[line - 1] = json.dumps(entry, ensure_ascii=False)
    return PackEdit({IMAGES_FILE: _listing_bytes(listing)})


def removal_edit(root: Path, line: int, image: str, avatar: str | None) -> PackEdit:
    """The screenshot on ``line`` taken out; its file deleted when nothing else in the pack names it."""
    listing = _listing(root)
    _entry_at(root, listing, line, image)
    del listing[line - 1]
    edit = PackEdit({IMAGES_FILE: _listing_bytes(listing)})
    target = (root / image).resolve()
    named = {(root / shot).resolve() for shot in [*_images_named(listing), avatar or ""] if shot}
    if target.is_relative_to(root.resolve()) and target not in named and target.is_file():
        edit.deletes.append(target.relative_to(root.resolve()).as_posix())
    return edit


def _images_named(listing: list[str]) -> list[str]:
    named: list[str] = []
    for raw in listing:
        try:
            entry = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("image"), str):
            named.append(entry["image"])
    return named


def addition_edit(root: Path, data: bytes, caption: str, limits: ImportLimits) -> PackEdit:
    """A new screenshot: ``images/NNNN.<its format>`` and a line of ``images.jsonl``.

    The picture is checked as an import checks one (pixels counted before decoding, then decoded
    whole); its suffix comes from its format, never from the uploaded name.
    """
    where = root / "images"
    with open_image(data, where, limits) as image:
        suffix = IMAGE_SUFFIXES.get(image.format or "")
        if suffix is None:
            raise PackError(
                where, f"a screenshot must be a PNG, JPEG, GIF or WebP picture, not {image.format}"
            )
        try:
            image.verify()
        except Exception as exc:
            raise PackError(where, f"the picture is damaged: {exc}") from None
    name = f"images/{new_image_name(root)}{suffix}"
    listing = _listing(root)
    while listing and not listing[-1].strip():
        listing.pop()
    listing.append(
        json.dumps({"image": name, "text": " ".join(clean_text(caption).split())}, ensure_ascii=False)
    )
    return PackEdit({name: data, IMAGES_FILE: _listing_bytes(listing)})


def new_image_name(root: Path) -> str:
    """The next free four-digit number in ``images/`` (whatever the suffixes there)."""
    folder = root / "images"
    stems = {file.stem for file in folder.iterdir()} if folder.is_dir() else set()
    number = max((int(stem) for stem in stems if _NUMBERED.match(stem)), default=0) + 1
    while f"{number:04d}" in stems:
        number += 1
    return f"{number:04d}"
