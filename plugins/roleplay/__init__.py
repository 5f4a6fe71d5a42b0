"""The NoneBot2 plugin: OneBot v11 and Console events in, :class:`~bot.messages.Reply` out.

It holds no logic of its own: each message event becomes an :class:`~bot.messages.Incoming`, the
core's router decides, and each reply is sent back to the chat it came from.
"""

from __future__ import annotations

import logging

from nonebot import on_message
from nonebot.adapters import Bot, Event
from nonebot.plugin import PluginMetadata

from bot.runtime import Runtime
from plugins.roleplay import console, onebot

log = logging.getLogger(__name__)

__plugin_meta__ = PluginMetadata(
    name="roleplay",
    description="Plays characters from character packs in groups and private chats.",
    usage="@ the bot, call a character by name, or send /help",
)


class _Host:
    """The runtime this plugin serves, attached by :func:`plugins.host.run` at start-up."""

    runtime: Runtime | None = None


def attach(runtime: Runtime | None) -> None:
    _Host.runtime = runtime


roleplay = on_message(priority=10, block=True)


@roleplay.handle()
async def handle_roleplay(bot: Bot, event: Event) -> None:
    runtime = _Host.runtime
    if runtime is None:
        log.warning("message received before the bot finished starting; ignored")
        return
    for platform in (onebot, console):
        incoming = platform.to_incoming(event)
        if incoming is None:
            continue
        try:
            replies = await runtime.router.handle(incoming)
        except Exception:
            log.exception("failed to handle a message in %s", incoming.key)
            return
        for reply in replies:
            await platform.send(bot, event, reply)
        return
