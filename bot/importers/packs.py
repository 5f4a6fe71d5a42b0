"""Our own pack format, as a folder or a zip, copied into the staging folder file by file.

A zip may hold the pack at its root or in one top folder (``orla/character.toml``), as
:func:`bot.importers.export.export_zip` writes it. Hidden files (``.git/``, ``.DS_Store``) and
``__MACOSX/`` are left out; links and special files are refused; every picture's size is checked before
the bot ever decodes it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot.engine.packs import AVATAR_SUFFIXES, PACK_FILE, PACK_ID
from bot.errors import PackError
from bot.importers.archives import SafeZip
from bot.importers.drafts import counted
from bot.importers.limits import ImportLimits, check_image, check_size


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") for part in relative.parts)


@dataclass(slots=True)
class CopiedPack:
    """A pack copied into the staging folder, and where it came from."""

    suggested_id: str | None
    """The pack's own id (its folder's name) when that is a valid id."""
    origin: Path
    """Where the pack's files are as the importer's user knows them: the folder, or ``archive.zip/top``."""
    notes: list[str]


def copy_pack_folder(source: Path, into: Path, limits: ImportLimits) -> CopiedPack:
    """Copy the pack folder ``source`` into ``into``; the folder's name is the suggested id."""
    files = hidden = total = 0
    for folder, dirnames, filenames in os.walk(source):
        base = Path(folder)
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                raise PackError(
                    base / name, "is a symbolic link; a pack to import must hold plain files only"
                )
            if name.startswith("."):
                dirnames.remove(name)
                hidden += 1
        for name in sorted(filenames):
            path = base / name
            if name.startswith("."):
                hidden += 1
                continue
            if path.is_symlink() or not path.is_file():
                raise PackError(
                    path, "is a link or a special file; a pack to import must hold plain files only"
                )
            files += 1
            if files > limits.max_archive_files:
                raise PackError(
                    source, f"the folder holds over {limits.max_archive_files:,} files, the import limit"
                )
            size = path.stat().st_size
            check_size(path, size, limits.max_file_bytes)
            total += size
            check_size(source, total, limits.max_unpacked_bytes, "the folder")
            target = into / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            if path.suffix.lower() in AVATAR_SUFFIXES:
                check_image(target.read_bytes(), path, limits)
    notes = [f"pack folder, {files} files copied"]
    if hidden:
        notes.append(f"{counted(hidden, 'hidden file or folder', 'hidden files or folders')} left out")
    return CopiedPack(source.name if PACK_ID.match(source.name) else None, source, notes)


def pack_root(names: set[str]) -> str | None:
    """Where the pack lies in an archive: ``""`` (its root), ``"top/"`` (one top folder), or ``None``."""
    if PACK_FILE in names:
        return ""
    roots = {
        name[: -len(PACK_FILE)] for name in names if name.count("/") == 1 and name.endswith(f"/{PACK_FILE}")
    }
    return roots.pop() if len(roots) == 1 else None


def extract_pack_zip(source: Path, into: Path, limits: ImportLimits) -> CopiedPack:
    """Unpack the pack in the zip ``source`` into ``into``; its top folder's name is the suggested id."""
    with SafeZip(source, limits) as archive:
        root = pack_root(archive.names())
        if root is None:
            raise PackError(source, f"no {PACK_FILE} at the archive's root or in one top folder: not a pack")
        unpacked = left_out = 0
        for member in archive.members:
            if not member.name.startswith(root) or _hidden(member.path):
                left_out += 1
                continue
            relative = member.name[len(root) :]
            target = into / relative
            try:
                archive.extract(member, target)
            except OSError as exc:
                raise PackError(
                    source, f"entry {member.name!r} cannot be unpacked: {exc.strerror or exc}"
                ) from None
            unpacked += 1
            if target.suffix.lower() in AVATAR_SUFFIXES:
                check_image(target.read_bytes(), source / member.name, limits)
    notes = [f"pack archive, {unpacked} files unpacked"]
    if left_out:
        notes.append(f"{counted(left_out, 'entry', 'entries')} outside the pack folder or hidden left out")
    top = root.rstrip("/")
    return CopiedPack(top if top and PACK_ID.match(top) else None, source / top if top else source, notes)
