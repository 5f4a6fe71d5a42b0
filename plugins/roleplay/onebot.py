"""OneBot v11 (QQ through NapCat/Lagrange/LLOneBot, WeChat through a OneBot bridge)."""

from __future__ import annotations

import asyncio
import logging

from nonebot.adapters import Bot, Event
from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    GroupMessageEvent,
    Message,
    MessageSegment,
    NetworkError,
    PrivateMessageEvent,
)
from nonebot.adapters.onebot.v11 import Bot as OneBot

from bot.messages import Incoming, Reply, Role, Sender

log = logging.getLogger(__name__)

PLATFORM = "onebot"
_ROLES = {"admin": Role.ADMIN, "owner": Role.OWNER}


def to_incoming(event: Event) -> Incoming | None:
    """The core's view of a OneBot group or private message; ``None`` for any other event.

    NoneBot's adapter has already set ``to_me`` (the message starts or ends with ``@bot``, or
    replies to the bot) and removed that ``@`` from the message.
    """
    if not isinstance(event, GroupMessageEvent | PrivateMessageEvent):
        return None
    sender = Sender(
        user_id=str(event.user_id),
        name=event.sender.card or event.sender.nickname or str(event.user_id),
        role=_ROLES.get(event.sender.role or "", Role.MEMBER),
    )
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
        )
    return Incoming(
        PLATFORM, "private", str(event.user_id), sender, event.get_plaintext(), True, str(event.message_id)
    )


async def to_message(reply: Reply, *, quote_id: int | None) -> Message:
    """Text and screenshots in one message; images go as ``base64://`` so the OneBot implementation
    need not share the bot's file system."""
    message = Message()
    if reply.quote and quote_id is not None:
        message += MessageSegment.reply(quote_id)
    message += MessageSegment.text(reply.text)
    for image in reply.images:
        message += MessageSegment.image(await asyncio.to_thread(image.path.read_bytes))
    return message


async def send(bot: Bot, event: Event, reply: Reply) -> None:
    """Post ``reply`` with ``send_group_msg`` / ``send_private_msg``, quoting the message it answers."""
    assert isinstance(bot, OneBot)
    try:
        if isinstance(event, GroupMessageEvent):
            await bot.send_group_msg(
                group_id=event.group_id, message=await to_message(reply, quote_id=event.message_id)
            )
        elif isinstance(event, PrivateMessageEvent):
            await bot.send_private_msg(user_id=event.user_id, message=await to_message(reply, quote_id=None))
    except (ActionFailed, NetworkError) as exc:
        log.error("could not send a reply through OneBot: %s", exc)
