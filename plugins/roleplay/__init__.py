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
from nonebot.adapters.onebot.v11 import Bot as OneBot
from nonebot.plugin import PluginMetadata

from bot.messages import ChatKey, Reply
from bot.runtime import Runtime
from plugins.roleplay import console, onebot
from plugins.roleplay.files import DEFAULT_ACCESS, FileAccess

log = logging.getLogger(__name__)

__plugin_meta__ = PluginMetadata(
    name="roleplay",
    description="Plays characters from character packs in groups and private chats.",
    usage="@ the bot, call a character by name, or send /help",
)


class _Host:
    """The runtime this plugin serves, attached by :func:`plugins.host.run` at start-up."""

    runtime: Runtime | None = None
    files: FileAccess = DEFAULT_ACCESS
    """How OneBot files are fetched, from the runtime's config."""


def attach(runtime: Runtime | None) -> None:
    """Serve ``runtime`` (``None`` at shutdown), and let its outbox post through the connected bots."""
    if _Host.runtime is not None:
        for platform in (onebot, console):
            _Host.runtime.outbox.unregister(platform.PLATFORM)
    _Host.runtime = runtime
    _Host.files = FileAccess.from_config(runtime.config) if runtime is not None else DEFAULT_ACCESS
    if runtime is not None:
        runtime.outbox.register(
            onebot.PLATFORM, partial(_post, partial(onebot.post, senders=runtime.senders))
        )
        runtime.outbox.register(console.PLATFORM, partial(_post_to_console, runtime))


async def _post(
    post: Callable[[Iterable[Bot], ChatKey, Reply], Awaitable[None]], key: ChatKey, reply: Reply
) -> None:
    await post(get_bots().values(), key, reply)


async def _post_to_console(runtime: Runtime, key: ChatKey, reply: Reply) -> None:
    await _post(console.post, key, reply)
    await runtime.ledger.settle([reply], "posted")


async def resend_unposted(bot: Bot) -> None:
    """A OneBot account connected (again): post what waited for it, and what a stopped process
    left unposted for it. The host runs this on every bot connection."""
    runtime = _Host.runtime
    if runtime is None or not isinstance(bot, OneBot):
        return
    account = str(bot.self_id)
    runtime.senders.resume(onebot.PLATFORM, account)
    queue = onebot.account_queue(runtime.senders, account)

    async def resend(key: ChatKey, reply: Reply) -> None:
        queue.post_later(key, reply)

    try:
        await runtime.ledger.resend(onebot.PLATFORM, account, resend)
    except Exception:
        log.exception("could not look up the replies left unposted for OneBot account %s", account)


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
        if platform is onebot:
            incoming = onebot.to_incoming(bot, event, _Host.files)
        else:
            incoming = console.to_incoming(bot, event)
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
                try:
                    pack = runtime.packs.get(reply.character) if reply.character else None
                    await console.send(bot, event, reply, speaker=pack.name if pack else None)
                except Exception as exc:
                    log.exception("could not post a reply in %s", incoming.key)
                    await runtime.ledger.settle([reply], "failed", str(exc))
                else:
                    await runtime.ledger.settle([reply], "posted")
        return
