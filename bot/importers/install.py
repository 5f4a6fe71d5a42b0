"""Installing an import: tell the format, convert aside, validate, then move into place (or nothing).

The pack is built in a hidden ``.import-*`` folder inside ``characters_dir`` (same file system, so the
final move is a rename; the leading ``.`` keeps a running bot from taking it for a pack). Only once it
loads with :func:`bot.engine.packs.load_pack` is it renamed to ``characters_dir/<id>``; any failure
before, Ctrl-C included, removes the hidden folder and leaves ``characters_dir`` as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.packs import PACK_FILE, PACK_ID, CharacterPack, load_pack
from bot.errors import PackError
from bot.importers.card_files import import_card_json, import_card_png, import_charx
from bot.importers.cards import PNG_SIGNATURE
from bot.importers.chatharuhi import SYSTEM_PROMPT_FILE, import_chatharuhi_folder, import_chatharuhi_jsonl
from bot.importers.corpora import import_qa, import_transcript, looks_like_qa
from bot.importers.drafts import PackDraft, pack_id_for
from bot.importers.limits import DEFAULT_LIMITS, ImportLimits, read_source_text
from bot.importers.packs import copy_pack_folder, extract_pack_zip, pack_root

FORMATS = (
    "pack-folder",
    "pack-zip",
    "card-png",
    "card-json",
    "charx",
    "chatharuhi-jsonl",
    "chatharuhi-folder",
    "qa",
    "transcript",
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ""})

Converter = Callable[[Path, ImportLimits, str | None], PackDraft]
_CONVERTERS: dict[str, Converter] = {
    "card-png": lambda source, limits, _id: import_card_png(source, limits),
    "card-json": lambda source, limits, _id: import_card_json(source, limits),
    "charx": lambda source, limits, _id: import_charx(source, limits),
    "chatharuhi-jsonl": import_chatharuhi_jsonl,
    "chatharuhi-folder": import_chatharuhi_folder,
    "qa": import_qa,
    "transcript": import_transcript,
}


@dataclass(slots=True)
class ImportResult:
    """An installed pack, the format it came from, and remarks for the person who imported it."""

    pack: CharacterPack
    format: str
    notes: list[str] = field(default_factory=list)


def _archive_names(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.replace("\\", "/").removeprefix("./") for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(path, f"not a readable zip archive: {exc}") from None


def _detect(path: Path, limits: ImportLimits) -> str:
    if path.is_dir():
        if (path / PACK_FILE).is_file():
            return "pack-folder"
        if (path / SYSTEM_PROMPT_FILE).is_file() or (path / "texts").is_dir():
            return "chatharuhi-folder"
        raise PackError(
            path,
            f"the folder holds neither {PACK_FILE} (a pack) nor {SYSTEM_PROMPT_FILE} or texts/ (ChatHaruhi)",
        )
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except FileNotFoundError:
        raise PackError(path, "no such file or folder") from None
    except OSError as exc:
        raise PackError(path, f"cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if head.startswith(PNG_SIGNATURE):
        return "card-png"
    if head.startswith(_ZIP_MAGIC) or suffix in {".zip", ".charx"}:
        if suffix == ".charx":
            return "charx"
        names = _archive_names(path)
        if pack_root(names) is not None:
            return "pack-zip"
        if "card.json" in names:
            return "charx"
        raise PackError(path, f"the archive holds neither card.json (a CHARX card) nor {PACK_FILE} (a pack)")
    if suffix == ".json":
        return "card-json"
    if suffix == ".jsonl":
        return "chatharuhi-jsonl"
    if suffix in _TEXT_SUFFIXES:
        text = read_source_text(path, limits)
        if text.lstrip().startswith("{"):
            return "card-json"
        return "qa" if looks_like_qa(text) else "transcript"
    raise PackError(
        path,
        "cannot tell what this file holds: expected a character card (.png, .json, .charx), a pack (a folder "
        "or .zip), ChatHaruhi data (.jsonl or a folder) or a transcript (.txt)",
    )


def detect_format(path: Path) -> str:
    """Which of :data:`FORMATS` ``path`` is in; :class:`PackError` naming the file when none fits."""
    return _detect(path, DEFAULT_LIMITS)


def _check_id(characters_dir: Path, pack_id: str) -> None:
    if not PACK_ID.match(pack_id):
        raise PackError(
            characters_dir,
            f"{pack_id!r} is not a pack id: use 1-32 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit",
        )


def _exists(target: Path) -> PackError:
    return PackError(
        target,
        f"a character with id {target.name!r} already exists; remove it first or import with another id",
    )


def _name_in(root: Path) -> str | None:
    try:
        name = tomllib.loads((root / PACK_FILE).read_text("utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return name if isinstance(name, str) and name.strip() else None


def _validate(staged: Path, shown_as: Path, what: str) -> None:
    """Load the staged pack; an error names the file as the importer's user knows it (``shown_as``)."""
    try:
        load_pack(staged)
    except PackError as exc:
        where = shown_as / exc.path.relative_to(staged) if exc.path.is_relative_to(staged) else exc.path
        raise PackError(where, f"{what} does not validate: {exc.reason}", line=exc.line) from None


def _move_into_place(staged: Path, target: Path, workspace: Path, replace: bool) -> None:
    previous = workspace / ".previous"
    if target.exists() or target.is_symlink():
        if not replace:
            raise _exists(target)
        target.rename(previous)
    try:
        staged.rename(target)
    except OSError as exc:
        if previous.exists():
            previous.rename(target)
        elif target.exists():
            raise _exists(target) from None
        raise PackError(target, f"cannot move the imported pack into place: {exc.strerror or exc}") from None


@dataclass(slots=True)
class _Converted:
    name: str | None
    suggested_id: str | None
    origin: Path | None
    """Where a validation error should point: the source pack's files, or ``None`` (the new pack)."""
    notes: list[str]


def _convert(
    fmt: str,
    source: Path,
    staged: Path,
    limits: ImportLimits,
    pack_id: str | None,
    say: Callable[[str], None],
) -> _Converted:
    """Write the pack ``source`` holds into the new folder ``staged``."""
    if fmt in {"pack-folder", "pack-zip"}:
        staged.mkdir()
        say("copying the pack's files")
        copied = (copy_pack_folder if fmt == "pack-folder" else extract_pack_zip)(source, staged, limits)
        return _Converted(_name_in(staged), copied.suggested_id, copied.origin, copied.notes)
    say("converting")
    draft = _CONVERTERS[fmt](source, limits, pack_id)
    say(f"writing {len(draft.scenes)} scenes")
    draft.write(staged)
    return _Converted(draft.name, None, None, draft.notes)


def import_pack(
    source: Path,
    characters_dir: Path,
    *,
    pack_id: str | None = None,
    replace: bool = False,
    limits: ImportLimits = DEFAULT_LIMITS,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import ``source`` (any of :data:`FORMATS`) as the pack ``characters_dir/<id>``, whole or not at all.

    ``pack_id`` defaults to the pack's own id (our format) or one made from the character's name. An
    existing pack of that id is refused unless ``replace``. ``progress`` hears one line per step.
    Blocking (file work, image decoding): call it from a worker thread in async code.
    """
    say = progress or (lambda _line: None)
    if pack_id is not None:
        _free(characters_dir, pack_id, replace)
    fmt = _detect(source, limits)
    say(f"{source.name}: {fmt}")
    target, converted = _install(
        characters_dir,
        pack_id,
        replace,
        lambda staged: _convert(fmt, source, staged, limits, pack_id, say),
        source.stem,
        say,
    )
    return ImportResult(load_pack(target), fmt, converted.notes)


def install_draft(
    draft: PackDraft, characters_dir: Path, pack_id: str, *, replace: bool = False
) -> CharacterPack:
    """Write ``draft`` as the pack ``characters_dir/<pack_id>``, whole or not at all.

    ``/character create`` makes its pack this way.
    """
    _free(characters_dir, pack_id, replace)

    def write(staged: Path) -> _Converted:
        draft.write(staged)
        return _Converted(draft.name, None, None, draft.notes)

    target, _converted = _install(characters_dir, pack_id, replace, write, draft.name, lambda _line: None)
    return load_pack(target)


def _free(characters_dir: Path, pack_id: str, replace: bool) -> None:
    """Refuse ``pack_id`` unless it is a valid id and free (or may be replaced)."""
    _check_id(characters_dir, pack_id)
    if (characters_dir / pack_id).exists() and not replace:
        raise _exists(characters_dir / pack_id)


def _install(
    characters_dir: Path,
    pack_id: str | None,
    replace: bool,
    build: Callable[[Path], _Converted],
    fallback_name: str,
    say: Callable[[str], None],
) -> tuple[Path, _Converted]:
    """Build a pack in a hidden folder with ``build``, validate it, and rename it into place."""
    created = not characters_dir.exists()
    characters_dir.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=".import-", dir=characters_dir))
    installed = False
    try:
        staged = workspace / "staged"
        converted = build(staged)
        chosen = pack_id or converted.suggested_id or pack_id_for(converted.name or fallback_name)
        _free(characters_dir, chosen, replace)
        target = characters_dir / chosen
        final = workspace / chosen
        staged.rename(final)
        say(f"validating {chosen}")
        if converted.origin is None:
            _validate(final, target, "the converted pack")
        else:
            _validate(final, converted.origin, "the pack")
        _move_into_place(final, target, workspace, replace)
        installed = True
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        if created and not installed:
            with contextlib.suppress(OSError):
                characters_dir.rmdir()
    say(f"installed {target}")
    return target, converted


def remove_pack(characters_dir: Path, pack_id: str) -> None:
    """Delete the pack ``characters_dir/<pack_id>``: renamed aside first, so no half-deleted pack is seen."""
    _check_id(characters_dir, pack_id)
    target = characters_dir / pack_id
    if target.is_symlink() or not target.is_dir():
        raise PackError(target, f"no character with id {pack_id!r} to remove")
    trash = Path(tempfile.mkdtemp(prefix=f".remove-{pack_id}-", dir=characters_dir))
    try:
        target.rename(trash / pack_id)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
