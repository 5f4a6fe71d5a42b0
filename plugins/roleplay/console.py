"""NoneBot's Console adapter: chat with the characters in a terminal."""

from __future__ import annotations

from nonebot.adapters import Bot, Event
from nonebot.adapters.console import Message, MessageEvent
from nonechat.model import DIRECT

from bot.messages import Incoming, Reply, Sender

PLATFORM = "console"


def to_incoming(event: Event) -> Incoming | None:
    """Every console message is addressed to the bot; the direct channel is a private chat."""
    if not isinstance(event, MessageEvent):
        return None
    sender = Sender(user_id=event.user.id, name=event.user.nickname or event.user.id)
    if event.channel == DIRECT:
        return Incoming(
            PLATFORM, "private", event.user.id, sender, event.get_plaintext(), True, event.message_id
        )
    return Incoming(
        PLATFORM, "group", event.channel.id, sender, event.get_plaintext(), True, event.message_id
    )


async def send(bot: Bot, event: Event, reply: Reply) -> None:
    lines = [reply.text, *(f"[screenshot: {image.path}]" for image in reply.images)]
    await bot.send(event, Message("\n".join(lines)))
