"""Reading zip archives (packs, CHARX cards) without trusting them.

Every entry is checked before anything is unpacked: its name must stay inside the archive (no ``..``,
no absolute or drive paths: "zip slip"), it must be a plain file (no symbolic links, no encryption), and
the declared sizes must fit the limits. While an entry is read the bytes are counted again, so an
archive that lies about its sizes is stopped all the same.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

from bot.errors import PackError
from bot.importers.limits import ImportLimits, check_size

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_JUNK = ("__MACOSX/",)


@dataclass(slots=True, frozen=True)
class Member:
    """One file of an archive, under its checked, normalised name."""

    name: str
    info: zipfile.ZipInfo

    @property
    def path(self) -> PurePosixPath:
        return PurePosixPath(self.name)


def _normalised(path: Path, info: zipfile.ZipInfo) -> str:
    raw = info.filename
    name = raw.replace("\\", "/")
    if "\0" in name:
        raise PackError(path, f"entry {raw!r}: the name holds a NUL character")
    if name.startswith("/") or _DRIVE.match(name):
        raise PackError(path, f"entry {raw!r}: absolute paths are not allowed in an archive")
    parts = [part for part in name.split("/") if part not in {"", "."}]
    if ".." in parts:
        raise PackError(path, f"entry {raw!r} points outside the archive ('..' in the path)")
    return "/".join(parts)


class SafeZip:
    """A zip archive whose entries have all been checked against the limits; read with :meth:`read`.

    Use as a context manager. ``members`` lists the plain files (folders and ``__MACOSX/`` left out).
    """

    def __init__(self, path: Path, limits: ImportLimits) -> None:
        self.path = path
        self.limits = limits
        self._read_total = 0
        try:
            check_size(path, path.stat().st_size, limits.max_unpacked_bytes, "the archive")
            self._zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise PackError(path, "no such file") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise PackError(path, f"not a readable zip archive: {exc}") from None
        try:
            self.members = self._check()
        except BaseException:
            self._zip.close()
            raise

    def _check(self) -> list[Member]:
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_archive_files:
            raise PackError(
                self.path,
                f"the archive holds {len(infos):,} entries, over the import limit of "
                f"{self.limits.max_archive_files:,}",
            )
        members: list[Member] = []
        seen: set[str] = set()
        declared = 0
        for info in infos:
            name = _normalised(self.path, info)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise PackError(
                    self.path, f"entry {info.filename!r} is a symbolic link; links are not allowed"
                )
            if info.is_dir() or not name or name.startswith(_JUNK):
                continue
            if info.flag_bits & 0x1:
                raise PackError(self.path, f"entry {info.filename!r} is encrypted")
            if name in seen:
                raise PackError(self.path, f"entry {info.filename!r} appears twice")
            seen.add(name)
            check_size(self.path, info.file_size, self.limits.max_file_bytes, f"entry {info.filename!r}")
            declared += info.file_size
            check_size(self.path, declared, self.limits.max_unpacked_bytes, "the unpacked archive")
            members.append(Member(name, info))
        return members

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._zip.close()

    def names(self) -> set[str]:
        return {member.name for member in self.members}

    def get(self, name: str) -> Member | None:
        return next((member for member in self.members if member.name == name), None)

    def chunks(self, member: Member) -> Iterator[bytes]:
        """The entry's bytes, counted against the per-file and total limits as they are unpacked."""
        size = 0
        try:
            with self._zip.open(member.info) as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    self._read_total += len(chunk)
                    check_size(self.path, size, self.limits.max_file_bytes, f"entry {member.name!r}")
                    check_size(
                        self.path, self._read_total, self.limits.max_unpacked_bytes, "the unpacked archive"
                    )
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise PackError(self.path, f"entry {member.name!r} cannot be unpacked: {exc}") from None

    def read(self, member: Member) -> bytes:
        return b"".join(self.chunks(member))

    def extract(self, member: Member, target: Path) -> None:
        """Unpack ``member`` to the file ``target`` (its folders are created)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for chunk in self.chunks(member):
                out.write(chunk)
