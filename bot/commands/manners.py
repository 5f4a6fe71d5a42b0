"""``/chatty`` and ``/debounce``: how readily a chat's character speaks up."""

from __future__ import annotations

import re

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.config import MAX_DEBOUNCE_S
from bot.errors import CommandError
from bot.messages import Reply

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%|s|秒)?")
RESET_WORDS = ("default", "默认")
OFF_WORDS = ("off", "0", "关")


def _percent(chance: float) -> str:
    return f"{chance * 100:.0f}%" if chance * 100 >= 1 or chance == 0 else f"{chance * 100:.1f}%"


def chattiness_of(context: CommandContext) -> float:
    chosen = context.state.chattiness
    return context.config.groups.chattiness if chosen is None else chosen


def debounce_of(context: CommandContext) -> float:
    chosen = context.state.debounce_s
    return context.config.groups.debounce_s if chosen is None else chosen


def parse_chance(text: str) -> float:
    """``10%``, ``0.1`` → 0.1; ``off`` → 0."""
    if text in OFF_WORDS:
        return 0.0
    match = _NUMBER.fullmatch(text)
    if match is None or match[2] not in (None, "%"):
        raise CommandError(f"'{text}' is not a chance: write a percentage (10%) or off.")
    value = float(match[1])
    chance = value / 100 if match[2] == "%" or value > 1 else value
    if chance > 1:
        raise CommandError(f"'{text}' is more than 100%.")
    return chance


def parse_seconds(text: str, limit: float) -> float:
    """``3``, ``3s``, ``3秒`` → 3.0; ``off`` → 0."""
    if text in OFF_WORDS:
        return 0.0
    match = _NUMBER.fullmatch(text)
    if match is None or match[2] == "%":
        raise CommandError(f"'{text}' is not a number of seconds: write e.g. 3s, or off.")
    seconds = float(match[1])
    if seconds > limit:
        raise CommandError(f"At most {limit:g} seconds.")
    return seconds


async def handle_chatty(context: CommandContext, args: str) -> Reply:
    if context.incoming.chat_type != "group":
        raise CommandError("/chatty is for groups: in a private chat every message is answered.")
    wanted = args.strip().casefold()
    name = context.active.name
    if not wanted:
        chance = chattiness_of(context)
        if chance == 0:
            return Reply(f"{name} speaks only when called here (/chatty 10% lets them join in now and then).")
        return Reply(f"{name} joins talk addressed to no one about {_percent(chance)} of the time here.")
    chosen = None if wanted in RESET_WORDS else parse_chance(wanted)
    await context.repository.chats.set_manners(context.incoming.key, chattiness=chosen)
    effective = context.config.groups.chattiness if chosen is None else chosen
    if effective == 0:
        return Reply(f"{name} now speaks only when called.")
    return Reply(f"{name} now joins talk addressed to no one about {_percent(effective)} of the time.")


async def handle_debounce(context: CommandContext, args: str) -> Reply:
    wanted = args.strip().casefold()
    if not wanted:
        seconds = debounce_of(context)
        if seconds == 0:
            return Reply(
                "Each message is answered at once here (/debounce 3s waits for the rest of a burst)."
            )
        return Reply(
            f"After a message, the bot waits {seconds:g}s for more; a burst gets one answer, to its last."
        )
    chosen = None if wanted in RESET_WORDS else parse_seconds(wanted, MAX_DEBOUNCE_S)
    await context.repository.chats.set_manners(context.incoming.key, debounce_s=chosen)
    effective = context.config.groups.debounce_s if chosen is None else chosen
    if effective == 0:
        return Reply("Each message is now answered at once.")
    return Reply(f"A burst of messages now gets one answer, {effective:g}s after its last message.")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "chatty",
            "how often the character joins talk addressed to no one",
            handle_chatty,
            usage="off|10%|default",
            level=Level.CHAT_ADMIN,
            aliases=("插话",),
        )
    )
    registry.add(
        Command(
            "debounce",
            "wait for the rest of a burst of messages before answering",
            handle_debounce,
            usage="off|3s|default",
            level=Level.CHAT_ADMIN,
            aliases=("防抖",),
        )
    )
