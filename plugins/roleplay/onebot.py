"""OneBot v11 (QQ through NapCat/Lagrange/LLOneBot, WeChat through a OneBot bridge).

Files that come in are :mod:`plugins.roleplay.files`' business. Files go out with
``upload_group_file`` / ``upload_private_file``, which take a path on the machine the OneBot
implementation runs on: the default set-up runs it beside the bot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace
from functools import partial

from nonebot import get_bots
from nonebot.adapters import Bot, Event
from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    ApiNotAvailable,
    GroupMessageEvent,
    GroupUploadNoticeEvent,
    Message,
    MessageSegment,
    NetworkError,
    PrivateMessageEvent,
)
from nonebot.adapters.onebot.v11 import Bot as OneBot

from bot.errors import AccountAway, SendError
from bot.messages import ChatKey, Incoming, Reply, Role, Sender
from bot.sending import Senders, SendQueue
from plugins.roleplay.files import DEFAULT_ACCESS, FileAccess, attachments_in, quoted_files, uploaded_file

log = logging.getLogger(__name__)

PLATFORM = "onebot"
_ROLES = {"admin": Role.ADMIN, "owner": Role.OWNER}
_ONEBOT_ERRORS = (ActionFailed, NetworkError)


# ---------------------------------------------------------------------- events in


def to_incoming(bot: Bot, event: Event, access: FileAccess = DEFAULT_ACCESS) -> Incoming | None:
    """The core's view of a OneBot group or private message, or of a group file upload; ``None`` for
    any other event.

    NoneBot's adapter has already set ``to_me`` (the message starts or ends with ``@bot``, or
    replies to the bot) and removed that ``@`` from the message.
    """
    if not isinstance(bot, OneBot):
        return None
    if isinstance(event, GroupUploadNoticeEvent):
        uploader = Sender(user_id=str(event.user_id), name=str(event.user_id))
        upload = uploaded_file(bot, event, access)
        return Incoming(
            PLATFORM,
            "group",
            str(event.group_id),
            uploader,
            "",
            attachments=(upload,),
            account=str(bot.self_id),
        )
    if not isinstance(event, GroupMessageEvent | PrivateMessageEvent):
        return None
    sender = Sender(
        user_id=str(event.user_id),
        name=event.sender.card or event.sender.nickname or str(event.user_id),
        role=_ROLES.get(event.sender.role or "", Role.MEMBER),
    )
    attached = attachments_in(bot, event.message, access)
    if isinstance(event, GroupMessageEvent):
        mentions = tuple(
            target
            for segment in event.message
            if segment.type == "at"
            and (target := str(segment.data.get("qq") or ""))
            and target not in ("all", str(event.self_id))
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
            attachments=attached,
            quoted=quoted_files(bot, event, access),
            account=str(bot.self_id),
        )
    return Incoming(
        PLATFORM,
        "private",
        str(event.user_id),
        sender,
        event.get_plaintext(),
        True,
        str(event.message_id),
        attachments=attached,
        quoted=quoted_files(bot, event, access),
        account=str(bot.self_id),
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
        try:
            message += MessageSegment.image(await asyncio.to_thread(image.path.read_bytes))
        except OSError as exc:
            log.warning("posting without the picture %s: %s", image.path, exc)
    return message


async def voice_message(reply: Reply) -> Message | None:
    """The reply's voice as a ``record`` segment (base64; the OneBot implementation converts MP3,
    Ogg/Opus or WAV to QQ's own format); ``None`` when it has none or its file cannot be read."""
    if reply.voice is None:
        return None
    try:
        return Message(MessageSegment.record(await asyncio.to_thread(reply.voice.path.read_bytes)))
    except OSError as exc:
        log.warning("posting without the voice %s: %s", reply.voice.path, exc)
        return None


async def deliver(bot: OneBot, key: ChatKey, reply: Reply, *, quote_id: int | None = None) -> None:
    """Post ``reply`` in the chat ``key`` names: its text, then its voice (a message of its own, as QQ
    wants), then its files; raises when the text (or a voice posted alone) fails."""
    private = key.chat_id.startswith("private:")
    target = int(key.chat_id.removeprefix("private:"))

    async def send(message: Message) -> None:
        if private:
            await bot.send_private_msg(user_id=target, message=message)
        else:
            await bot.send_group_msg(group_id=target, message=message)

    voice = await voice_message(reply)
    if voice is None or not reply.voice_only:
        await send(await to_message(reply, quote_id=None if private else quote_id))
    if voice is not None:
        try:
            await send(voice)
        except ActionFailed as exc:
            if reply.voice_only:
                raise
            log.warning("%s: the voice was refused, the text is out (%s)", key, exc)
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


async def post_now(account: str, key: ChatKey, reply: Reply) -> None:
    """Post at once through ``account``'s current connection (the account's send queue calls this).

    :class:`AccountAway` when the account is not connected (its queue waits for it); a refusal
    becomes :class:`SendError` with OneBot's retcode, so the queue retries it.
    """
    bot = get_bots().get(account)
    if not isinstance(bot, OneBot):
        raise AccountAway(f"OneBot account {account} is not connected")
    quote_id = int(reply.reply_to) if reply.reply_to and reply.reply_to.isdigit() else None
    try:
        await deliver(bot, key, reply, quote_id=quote_id)
    except ApiNotAvailable as exc:
        raise AccountAway(f"OneBot account {account} disconnected") from exc
    except ActionFailed as exc:
        info = getattr(exc, "info", None) or {}
        why = info.get("wording") or info.get("message") or exc
        raise SendError(f"OneBot refused it (retcode {info.get('retcode', '?')}: {why})") from exc
    except NetworkError as exc:
        raise SendError(f"OneBot did not answer: {exc}") from exc


def account_queue(senders: Senders, account: str) -> SendQueue:
    """The paced send queue of the OneBot account ``account`` (its self id)."""
    return senders.queue(PLATFORM, account, partial(post_now, account))


async def send(bot: Bot, event: Event, reply: Reply, senders: Senders) -> None:
    """Queue ``reply`` on the account's paced queue, quoting the message it answers, and wait until
    it was posted or kept as failed."""
    assert isinstance(bot, OneBot)
    if isinstance(event, GroupMessageEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "group", str(event.group_id)), event.message_id
    elif isinstance(event, PrivateMessageEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "private", str(event.user_id)), None
    elif isinstance(event, GroupUploadNoticeEvent):
        key, quote_id = ChatKey.for_chat(PLATFORM, "group", str(event.group_id)), None
    else:
        return
    queue = account_queue(senders, str(bot.self_id))
    try:
        await queue.send(key, replace(reply, reply_to=str(quote_id) if quote_id else None))
    except SendError:
        pass  # logged, kept and settled by the queue


async def post(bots: Iterable[Bot], key: ChatKey, reply: Reply, senders: Senders) -> None:
    """Post on the bot's own initiative through the first connected OneBot account (paced like
    replies); raises :class:`SendError` when it could not be posted."""
    bot = next((bot for bot in bots if isinstance(bot, OneBot)), None)
    if bot is None:
        raise AccountAway("no OneBot implementation is connected")
    await account_queue(senders, str(bot.self_id)).send(key, reply)
