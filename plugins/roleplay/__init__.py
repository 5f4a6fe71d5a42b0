"""The NoneBot2 plugin: OneBot v11 and Console events in, :class:`~bot.messages.Reply` out.

It holds no logic of its own: each message event (and a group file upload) becomes an
:class:`~bot.messages.Incoming`, the core's router decides, and each reply is sent back to the chat it
came from. It also tells the runtime's outbox how to post to OneBot and console chats.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from nonebot import get_bots, on_message, on_notice
from nonebot.adapters import Bot, Event
from nonebot.plugin import PluginMetadata

from bot.messages import ChatKey, Reply
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
    """Serve ``runtime`` (``None`` at shutdown), and let its outbox post through the connected bots."""
    if _Host.runtime is not None:
        for platform in (onebot, console):
            _Host.runtime.outbox.unregister(platform.PLATFORM)
    _Host.runtime = runtime
    if runtime is not None:
        runtime.outbox.register(
            onebot.PLATFORM, partial(_post, partial(onebot.post, senders=runtime.senders))
        )
        runtime.outbox.register(console.PLATFORM, partial(_post, console.post))


async def _post(
    post: Callable[[Iterable[Bot], ChatKey, Reply], Awaitable[None]], key: ChatKey, reply: Reply
) -> None:
    await post(get_bots().values(), key, reply)


roleplay = on_message(priority=10, block=True)
uploads = on_notice(priority=10, block=False)


@roleplay.handle()
@uploads.handle()
async def handle_roleplay(bot: Bot, event: Event) -> None:
    runtime = _Host.runtime
    if runtime is None:
        log.warning("message received before the bot finished starting; ignored")
        return
    for platform in (onebot, console):
        incoming = platform.to_incoming(bot, event)
        if incoming is None:
            continue
        try:
            replies = await runtime.router.handle(incoming)
        except Exception:
            log.exception("failed to handle a message in %s", incoming.key)
            return
        for reply in replies:
            if platform is onebot:
                # Paced per account: QQ limits accounts that post in bursts (see bot.sending).
                await onebot.send(bot, event, reply, runtime.senders)
            else:
                await console.send(bot, event, reply)
        return
