"""OneBot v11 (QQ through NapCat/Lagrange/LLOneBot, WeChat through a OneBot bridge).

Files come in three ways, all turned into :class:`~bot.messages.Attachment`\\ s fetched only when a
command wants them: ``file`` and ``image`` segments of a message (NapCat, Lagrange, LLOneBot), the
message a command replies to (NoneBot has already fetched it with ``get_msg``), and go-cqhttp's
``group_upload`` notice for a file put in the group's file area. Files go out with
``upload_group_file`` / ``upload_private_file``, which take a path on the machine the OneBot
implementation runs on: the default set-up runs it beside the bot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from nonebot.adapters import Bot, Event
from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    GroupMessageEvent,
    GroupUploadNoticeEvent,
    Message,
    MessageEvent,
    MessageSegment,
    NetworkError,
    PrivateMessageEvent,
)
from nonebot.adapters.onebot.v11 import Bot as OneBot

from bot.errors import AttachmentError, SendError
from bot.messages import Attachment, Attachments, ChatKey, Incoming, Reply, Role, Sender
from bot.sending import Senders, SendQueue

log = logging.getLogger(__name__)

PLATFORM = "onebot"
FILE_SEGMENTS = ("file", "image")
DOWNLOAD_TIMEOUT_S = 60.0
_ROLES = {"admin": Role.ADMIN, "owner": Role.OWNER}
_ONEBOT_ERRORS = (ActionFailed, NetworkError)


# ---------------------------------------------------------------------- files in


def _too_big(name: str, max_bytes: int) -> AttachmentError:
    return AttachmentError(f"{name} is larger than the import limit of {max_bytes:,} bytes.")


async def download(url: str, name: str, max_bytes: int) -> bytes:
    """The file at ``url``, streamed and refused as soon as it passes ``max_bytes``."""
    try:
        async with (
            httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            response.raise_for_status()
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(name, max_bytes)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise _too_big(name, max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise AttachmentError(f"Could not download {name}: {exc}") from None


def _read_local(path: Path, name: str, max_bytes: int) -> bytes | None:
    """The file at ``path`` on this machine; ``None`` when it is not here (OneBot runs elsewhere)."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > max_bytes:
            raise _too_big(name, max_bytes)
        return path.read_bytes()
    except OSError as exc:
        raise AttachmentError(
            f"Could not read {name} where the OneBot implementation put it: {exc}"
        ) from None


async def _from_file_info(info: dict[str, Any], name: str, max_bytes: int) -> bytes:
    """A file from a ``get_file`` answer: inline base64, a local path, or a URL, whichever it gave."""
    if isinstance(encoded := info.get("base64"), str) and encoded:
        if len(encoded) * 3 // 4 > max_bytes + 3:
            raise _too_big(name, max_bytes)
        try:
            return base64.b64decode(encoded.removeprefix("base64://"), validate=True)
        except (binascii.Error, ValueError):
            raise AttachmentError(f"The OneBot implementation sent {name} as broken base64.") from None
    if isinstance(local := info.get("file"), str) and local:
        data = await asyncio.to_thread(_read_local, Path(local), name, max_bytes)
        if data is not None:
            return data
    if isinstance(url := info.get("url"), str) and url.startswith(("http://", "https://")):
        return await download(url, name, max_bytes)
    raise AttachmentError(f"The OneBot implementation gave no way to fetch {name} (no base64, path or URL).")


def segment_attachment(bot: OneBot, segment: MessageSegment) -> Attachment:
    """A ``file`` or ``image`` segment as an attachment: its URL when it has one, else ``get_file``."""
    data = segment.data
    stored = str(data.get("file") or "")
    name = str(data.get("name") or data.get("file_name") or Path(stored).name or segment.type)
    size_field = str(data.get("file_size") or data.get("size") or "")
    size = int(size_field) if size_field.isdigit() else None
    url = data.get("url")

    async def fetch(max_bytes: int) -> bytes:
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return await download(url, name, max_bytes)
        query = {key: data[key] for key in ("file_id", "file") if data.get(key)}
        try:
            info = await bot.call_api("get_file", **query)
        except _ONEBOT_ERRORS as exc:
            raise AttachmentError(f"Could not fetch {name} from the OneBot implementation: {exc}") from None
        if not isinstance(info, dict):
            raise AttachmentError(f"The OneBot implementation answered get_file for {name} with nothing.")
        return await _from_file_info(info, name, max_bytes)

    return Attachment(name, fetch, size)


def attachments_in(bot: OneBot, message: Iterable[MessageSegment]) -> tuple[Attachment, ...]:
    return tuple(segment_attachment(bot, segment) for segment in message if segment.type in FILE_SEGMENTS)


def _quoted(bot: OneBot, event: MessageEvent) -> Attachments | None:
    """The files of the message ``event`` replies to (NoneBot fetched it with ``get_msg`` already)."""
    if event.reply is None:
        return None
    replied = event.reply.message

    async def quoted() -> tuple[Attachment, ...]:
        return attachments_in(bot, replied)

    return quoted


def uploaded_file(bot: OneBot, event: GroupUploadNoticeEvent) -> Attachment:
    """A file put in the group's file area, fetched through ``get_group_file_url``."""
    file = event.file

    async def fetch(max_bytes: int) -> bytes:
        if file.size > max_bytes:
            raise _too_big(file.name, max_bytes)
        try:
            info = await bot.call_api(
                "get_group_file_url", group_id=event.group_id, file_id=file.id, busid=file.busid
            )
        except _ONEBOT_ERRORS as exc:
            raise AttachmentError(f"Could not get {file.name} from the group's files: {exc}") from None
        url = info.get("url") if isinstance(info, dict) else None
        if not isinstance(url, str) or not url:
            raise AttachmentError(f"The OneBot implementation gave no link to {file.name}.")
        return await download(url, file.name, max_bytes)

    return Attachment(file.name, fetch, file.size)


# ---------------------------------------------------------------------- events in


def to_incoming(bot: Bot, event: Event) -> Incoming | None:
    """The core's view of a OneBot group or private message, or of a group file upload; ``None`` for
    any other event.

    NoneBot's adapter has already set ``to_me`` (the message starts or ends with ``@bot``, or
    replies to the bot) and removed that ``@`` from the message.
    """
    if not isinstance(bot, OneBot):
        return None
    if isinstance(event, GroupUploadNoticeEvent):
        uploader = Sender(user_id=str(event.user_id), name=str(event.user_id))
        return Incoming(
            PLATFORM, "group", str(event.group_id), uploader, "", attachments=(uploaded_file(bot, event),)
        )
    if not isinstance(event, GroupMessageEvent | PrivateMessageEvent):
        return None
    sender = Sender(
        user_id=str(event.user_id),
        name=event.sender.card or event.sender.nickname or str(event.user_id),
        role=_ROLES.get(event.sender.role or "", Role.MEMBER),
    )
    files = attachments_in(bot, event.message)
    if isinstance(event, GroupMessageEvent):
        mentions = tuple(
            str(segment.data["qq"])
            for segment in event.message
            if segment.type == "at" and str(segment.data.get("qq")) not in ("all", str(event.self_id))
        )
        return Incoming(
            PLATFORM,
            "group",
            str(event.group_id),
            sender,
            event.get_plaintext(),
            event.to_me,
            str(event.message_id),
            mentions=mentions,
            attachments=files,
            quoted=_quoted(bot, event),
        )
    return Incoming(
        PLATFORM,
        "private",
        str(event.user_id),
        sender,
        event.get_plaintext(),
        True,
        str(event.message_id),
        attachments=files,
        quoted=_quoted(bot, event),
    )


# ---------------------------------------------------------------------- replies out


async def to_message(reply: Reply, *, quote_id: int | None) -> Message:
    """Text and screenshots in one message; images go as ``base64://`` so the OneBot implementation
    need not share the bot's file system."""
    message = Message()
    if reply.quote and quote_id is not None:
        message += MessageSegment.reply(quote_id)
    if reply.text:
        message += MessageSegment.text(reply.text)
    for image in reply.images:
        message += MessageSegment.image(await asyncio.to_thread(image.path.read_bytes))
    return message


async def deliver(bot: OneBot, key: ChatKey, reply: Reply, *, quote_id: int | None = None) -> None:
    """Post ``reply`` in the chat ``key`` names, then upload its files; raises when the text fails."""
    private = key.chat_id.startswith("private:")
    target = int(key.chat_id.removeprefix("private:"))
    if private:
        await bot.send_private_msg(user_id=target, message=await to_message(reply, quote_id=None))
    else:
        await bot.send_group_msg(group_id=target, message=await to_message(reply, quote_id=quote_id))
    for file in reply.files:
        path = str(file.path.resolve())
        try:
            if private:
                await bot.call_api("upload_private_file", user_id=target, file=path, name=file.name)
            else:
                await bot.call_api("upload_group_file", group_id=target, file=path, name=file.name)
        except _ONEBOT_ERRORS as exc:
            log.error("could not upload %s to %s: %s", file.name, key, exc)
            note = Reply(f"Could not send {file.name} here; it is on the bot's server at {path}", quote=False)
            await deliver(bot, key, note)


async def post_now(bot: OneBot, key: ChatKey, reply: Reply) -> None:
    """Post at once (the account's send queue calls this); a refusal becomes :class:`SendError`
    with OneBot's retcode, so the queue retries it."""
    quote_id = int(reply.reply_to) if reply.reply_to and reply.reply_to.isdigit() else None
    try:
        await deliver(bot, key, reply, quote_id=quote_id)
    except ActionFailed as exc:
        info = getattr(exc, "info", None) or {}
        why = info.get("wording") or info.get("message") or exc
        raise SendError(f"OneBot refused it (retcode {info.get('retcode', '?')}: {why})") from exc
    except NetworkError as exc:
        raise SendError(f"OneBot did not answer: {exc}") from exc


def _queue(senders: Senders, bot: OneBot) -> SendQueue:
    return senders.queue(PLATFORM, str(bot.self_id), partial(post_now, bot))


async def send(bot: Bot, event: Event, reply: Reply, senders: Senders) -> None:
    """Queue ``reply`` on the account's paced queue, quoting the message it answers."""
    assert isinstance(bot, OneBot)
    if isinstance(event, GroupMessageEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "group", str(event.group_id)), event.message_id
    elif isinstance(event, PrivateMessageEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "private", str(event.user_id)), None
    elif isinstance(event, GroupUploadNoticeEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "group", str(event.group_id)), None
    else:
        return
    try:
        await _queue(senders, bot).send(key, replace(reply, reply_to=str(quote_id) if quote_id else None))
    except SendError:
        pass  # logged and kept by the queue


async def post(bots: Iterable[Bot], key: ChatKey, reply: Reply, senders: Senders) -> None:
    """Post on the bot's own initiative through the first connected OneBot account (paced like
    replies); raises :class:`SendError` when it could not be posted."""
    bot = next((bot for bot in bots if isinstance(bot, OneBot)), None)
    if bot is None:
        raise ConnectionError("no OneBot implementation is connected")
    await _queue(senders, bot).send(key, reply)
