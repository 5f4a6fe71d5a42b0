"""Files that come in through OneBot, as :class:`~bot.messages.Attachment`\\ s fetched only when a
command wants them.

They come three ways: ``file`` and ``image`` segments of a message (NapCat, Lagrange, LLOneBot), the
message a command replies to (NoneBot has already fetched it with ``get_msg``), and go-cqhttp's
``group_upload`` notice for a file put in the group's file area.

Nothing here trusts what it is handed: links go through :class:`~bot.fetching.Downloader` (public
addresses only, one deadline), and a path on disk that ``get_file`` answers with is read only inside
``[platforms.onebot] file_dir``, the folder the OneBot implementation shares with the bot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    GroupUploadNoticeEvent,
    MessageEvent,
    MessageSegment,
    NetworkError,
)
from nonebot.adapters.onebot.v11 import Bot as OneBot

from bot.config import BotConfig
from bot.errors import AttachmentError
from bot.fetching import Downloader, too_big
from bot.messages import Attachment, Attachments

FILE_SEGMENTS = ("file", "image")
FILE_DIR_KEY = "[platforms.onebot] file_dir"
_ONEBOT_ERRORS = (ActionFailed, NetworkError)


@dataclass(frozen=True, slots=True)
class FileAccess:
    """How OneBot files are fetched: the downloader for links, and the folder shared with the OneBot
    implementation (``None``: local paths are never read)."""

    downloader: Downloader = field(default_factory=Downloader)
    shared_dir: Path | None = None

    @classmethod
    def from_config(cls, config: BotConfig) -> FileAccess:
        characters = config.characters
        downloader = Downloader(
            allow_private=characters.allow_private_urls,
            allowed_networks=characters.allowed_networks,
            timeout_s=characters.download_timeout_s,
        )
        shared = config.platforms.onebot.file_dir
        return cls(downloader, config.path(shared) if shared is not None else None)

    async def download(self, url: str, name: str, max_bytes: int) -> bytes:
        return await self.downloader.fetch(url, name, max_bytes)


DEFAULT_ACCESS = FileAccess()
"""Public links only, within a minute; no local paths."""


def _local_path(value: str) -> Path:
    """A path as ``get_file`` gives it: plain, or a ``file://`` URI."""
    if value.startswith("file://"):
        return Path(unquote(urlsplit(value).path))
    return Path(value)


def _inside(path: Path, shared_dir: Path) -> Path | None:
    """``path`` with links resolved, when it lies inside ``shared_dir`` (relative paths are taken
    from there); ``None`` when it lies elsewhere."""
    root = shared_dir.resolve()
    real = (root / path).resolve()
    return real if real.is_relative_to(root) else None


def _read_local(path: Path, name: str, max_bytes: int) -> bytes | None:
    """The regular file at ``path`` (already resolved) on this machine; ``None`` when it is not here."""
    # NOTE: O_NOFOLLOW: the last part was resolved as no link and must not become one meanwhile;
    # O_NONBLOCK: opening a pipe put there must not hang the thread.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(name, exc) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise AttachmentError(f"The OneBot implementation named {name} at a path that is no file.")
        if status.st_size > max_bytes:
            raise too_big(name, max_bytes)
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise _unreadable(name, exc) from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise too_big(name, max_bytes)
    return data


def _unreadable(name: str, exc: OSError) -> AttachmentError:
    return AttachmentError(f"Could not read {name} where the OneBot implementation put it: {exc}")


async def _from_file_info(info: dict[str, Any], name: str, max_bytes: int, access: FileAccess) -> bytes:
    """A file from a ``get_file`` answer: inline base64, a path in the shared folder, or a URL,
    whichever it gave and the bot may use."""
    if isinstance(encoded := info.get("base64"), str) and encoded:
        if len(encoded) * 3 // 4 > max_bytes + 3:
            raise too_big(name, max_bytes)
        try:
            return base64.b64decode(encoded.removeprefix("base64://"), validate=True)
        except (binascii.Error, ValueError):
            raise AttachmentError(f"The OneBot implementation sent {name} as broken base64.") from None
    refused: AttachmentError | None = None
    if isinstance(local := info.get("file"), str) and local:
        if access.shared_dir is None:
            refused = AttachmentError(
                f"The OneBot implementation gave {name} only as a path on disk, and the bot reads none "
                f"unless {FILE_DIR_KEY} names the folder it shares with the implementation (or turn on "
                "base64 for get_file in the implementation's settings)."
            )
        elif (inside := _inside(_local_path(local), access.shared_dir)) is None:
            refused = AttachmentError(
                f"Refused to read {name}: the OneBot implementation put it outside {FILE_DIR_KEY} "
                f"({access.shared_dir})."
            )
        elif (data := await asyncio.to_thread(_read_local, inside, name, max_bytes)) is not None:
            return data
    if isinstance(url := info.get("url"), str) and url.startswith(("http://", "https://")):
        return await access.download(url, name, max_bytes)
    if refused is not None:
        raise refused
    raise AttachmentError(f"The OneBot implementation gave no way to fetch {name} (no base64, path or URL).")


def segment_attachment(bot: OneBot, segment: MessageSegment, access: FileAccess) -> Attachment:
    """A ``file`` or ``image`` segment as an attachment: its URL when it has one, else ``get_file``."""
    data = segment.data
    stored = str(data.get("file") or "")
    name = str(data.get("name") or data.get("file_name") or Path(stored).name or segment.type)
    size_field = str(data.get("file_size") or data.get("size") or "")
    size = int(size_field) if size_field.isdigit() else None
    url = data.get("url")

    async def fetch(max_bytes: int) -> bytes:
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return await access.download(url, name, max_bytes)
        query = {key: data[key] for key in ("file_id", "file") if data.get(key)}
        try:
            info = await bot.call_api("get_file", **query)
        except _ONEBOT_ERRORS as exc:
            raise AttachmentError(f"Could not fetch {name} from the OneBot implementation: {exc}") from None
        if not isinstance(info, dict):
            raise AttachmentError(f"The OneBot implementation answered get_file for {name} with nothing.")
        return await _from_file_info(info, name, max_bytes, access)

    return Attachment(name, fetch, size)


def attachments_in(
    bot: OneBot, message: Iterable[MessageSegment], access: FileAccess
) -> tuple[Attachment, ...]:
    return tuple(
        segment_attachment(bot, segment, access) for segment in message if segment.type in FILE_SEGMENTS
    )


def quoted_files(bot: OneBot, event: MessageEvent, access: FileAccess) -> Attachments | None:
    """The files of the message ``event`` replies to (NoneBot fetched it with ``get_msg`` already)."""
    if event.reply is None:
        return None
    replied = event.reply.message

    async def quoted() -> tuple[Attachment, ...]:
        return attachments_in(bot, replied, access)

    return quoted


def uploaded_file(bot: OneBot, event: GroupUploadNoticeEvent, access: FileAccess) -> Attachment:
    """A file put in the group's file area, fetched through ``get_group_file_url``."""
    file = event.file

    async def fetch(max_bytes: int) -> bytes:
        if file.size > max_bytes:
            raise too_big(file.name, max_bytes)
        try:
            info = await bot.call_api(
                "get_group_file_url", group_id=event.group_id, file_id=file.id, busid=file.busid
            )
        except _ONEBOT_ERRORS as exc:
            raise AttachmentError(f"Could not get {file.name} from the group's files: {exc}") from None
        url = info.get("url") if isinstance(info, dict) else None
        if not isinstance(url, str) or not url:
            raise AttachmentError(f"The OneBot implementation gave no link to {file.name}.")
        return await access.download(url, file.name, max_bytes)

    return Attachment(file.name, fetch, file.size)
