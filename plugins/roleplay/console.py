"""NoneBot's Console adapter: chat with the characters in a terminal."""

from __future__ import annotations

from collections.abc import Iterable

from nonebot.adapters import Bot, Event
from nonebot.adapters.console import Bot as ConsoleBot
from nonebot.adapters.console import Message, MessageEvent
from nonechat.model import DIRECT

from bot.messages import ChatKey, Incoming, Reply, Sender

PLATFORM = "console"


def to_incoming(bot: Bot, event: Event) -> Incoming | None:
    """Every console message is addressed to the bot; the direct channel is a private chat.

    The console's message ids are not unique (each run starts again), so none is passed on.
    """
    if not isinstance(event, MessageEvent):
        return None
    sender = Sender(user_id=event.user.id, name=event.user.nickname or event.user.id)
    if event.channel == DIRECT:
        return Incoming(PLATFORM, "private", event.user.id, sender, event.get_plaintext(), True)
    return Incoming(PLATFORM, "group", event.channel.id, sender, event.get_plaintext(), True)


def _text(reply: Reply) -> Message:
    lines = [
        reply.text,
        *(f"[screenshot: {image.path}]" for image in reply.images),
        *(f"[file: {file.path}]" for file in reply.files),
    ]
    return Message("\n".join(lines))


async def send(bot: Bot, event: Event, reply: Reply) -> None:
    await bot.send(event, _text(reply))


async def post(bots: Iterable[Bot], key: ChatKey, reply: Reply) -> None:
    """Post on the bot's own initiative (import progress) in the console's chat ``key`` names."""
    bot = next((bot for bot in bots if isinstance(bot, ConsoleBot)), None)
    if bot is None:
        raise ConnectionError("the console is not running")
    if key.chat_id.startswith("private:"):
        await bot.send_private_message(key.chat_id.removeprefix("private:"), _text(reply))
    else:
        await bot.send_message(key.chat_id, _text(reply))
