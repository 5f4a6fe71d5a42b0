"""NoneBot's Console adapter: chat with the characters in a terminal.

Each character speaks in its own bubble, under its own name; quitting the console (Ctrl+Q) ends the
bot (:func:`end_with_the_console`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterable

import nonebot
from nonebot.adapters import Bot, Event
from nonebot.adapters.console import Adapter as ConsoleAdapter
from nonebot.adapters.console import Bot as ConsoleBot
from nonebot.adapters.console import Message, MessageEvent
from nonechat.model import DIRECT, Robot

from bot.messages import ChatKey, Incoming, Reply, Sender

PLATFORM = "console"

log = logging.getLogger(__name__)

STOP_AFTER_S = 0.2
"""How long a closed window waits before stopping the bot: a shutdown under way closes it too, and
marks itself by then."""


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
    """The reply as console text: a voice is shown as its file's path (with its words when the chat
    hears only the voice)."""
    voice = reply.voice
    lines = [
        f"({reply.text})" if voice is not None and reply.voice_only else reply.text,
        *(f"[screenshot: {image.path}]" for image in reply.images),
        *(f"[file: {file.path}]" for file in reply.files),
        *([f"[voice{' (recorded)' if voice.recorded else ''}: {voice.path}]"] if voice is not None else []),
    ]
    return Message("\n".join(lines))


async def send(bot: Bot, event: Event, reply: Reply, speaker: str | None = None) -> None:
    """Post ``reply`` in the event's chat, in a bubble of ``speaker`` (the character's name) when
    given, else of the bot."""
    if speaker and isinstance(bot, ConsoleBot) and reply.character:
        character = Robot(id=f"{bot.self_id}:{reply.character}", avatar="🎭", nickname=speaker)
        bot = ConsoleBot(bot.adapter, character)  # the console draws a bubble per sending bot
    await bot.send(event, _text(reply))


def end_with_the_console() -> None:
    """Put the cursor in the message box, let Ctrl+C close the window as Ctrl+Q does, and when the
    window closes, stop the whole process.

    The console adapter runs its window as a task of its own and, when it ends, leaves the server
    running with its port open; this ends the process through the server's own signal handling. The
    window opens with nothing focused, so what a newcomer types first would be lost.
    """
    adapter = next(
        (adapter for adapter in nonebot.get_adapters().values() if isinstance(adapter, ConsoleAdapter)), None
    )
    # NOTE: ``_task`` runs the window, ``_frontend`` is it (nonebot-adapter-console 0.10).
    window: asyncio.Task[None] | None = getattr(adapter, "_task", None)
    frontend = getattr(adapter, "_frontend", None)
    if window is None or frontend is None:
        log.warning("the console's window was not found; closing it will not stop the bot")
        return
    try:
        frontend.call_after_refresh(frontend.action_focus_input)
    except Exception:  # the window is not up yet: Ctrl+/ still focuses the box
        log.debug("could not focus the console's message box", exc_info=True)
    # NOTE: Textual keeps Ctrl+C for copying (and a "press Ctrl+Q" reminder); a terminal user expects it
    # to quit. A priority binding on the app comes before the focused widget's. Private in Textual 8.
    bindings = getattr(frontend, "_bindings", None)
    if bindings is not None:
        bindings.bind("ctrl+c", "quit", priority=True)

    stopping = asyncio.Event()

    async def mark_stopping() -> None:
        stopping.set()

    def stop() -> None:
        if not stopping.is_set():  # not the window closed by a shutdown already under way
            log.info("the console was closed; stopping")
            os.kill(os.getpid(), signal.SIGTERM)

    nonebot.get_driver().on_shutdown(mark_stopping)
    window.add_done_callback(lambda _task: asyncio.get_running_loop().call_later(STOP_AFTER_S, stop))


async def post(bots: Iterable[Bot], key: ChatKey, reply: Reply) -> None:
    """Post on the bot's own initiative (import progress) in the console's chat ``key`` names."""
    bot = next((bot for bot in bots if isinstance(bot, ConsoleBot)), None)
    if bot is None:
        raise ConnectionError("the console is not running")
    if key.chat_id.startswith("private:"):
        await bot.send_private_message(key.chat_id.removeprefix("private:"), _text(reply))
    else:
        await bot.send_message(key.chat_id, _text(reply))
