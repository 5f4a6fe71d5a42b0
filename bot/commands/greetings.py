"""``/greet``: the active character greets the chat every day at a set time."""

from __future__ import annotations

import re
from datetime import datetime, time

from bot.commands import Command, CommandContext, CommandRegistry, Level, Verb, split_first
from bot.errors import CommandError
from bot.messages import Reply

_TIME = re.compile(r"(\d{1,2})(?:[:：.](\d{2}))?")


def parse_time(text: str) -> time:
    """``08:30``, ``8:30``, ``8：30``, ``20`` → a time of day."""
    match = _TIME.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2] or 0) > 59:
        raise CommandError(f"'{text}' is not a time of day: write it as HH:MM, e.g. /greet on 08:30")
    return time(int(match[1]), int(match[2] or 0))


def _when(moment: datetime) -> str:
    return f"{moment:%a %d %b %H:%M}"


async def handle_show(context: CommandContext, args: str) -> Reply:
    greetings = context.greetings
    saved = await greetings.saved(context.incoming.key)
    if saved is None:
        return Reply("No daily greeting here. A chat admin turns it on with /greet on 08:30 [time zone].")
    tz = greetings.zone(saved.timezone)
    upcoming = greetings.next_time(time.fromisoformat(saved.at), tz)
    return Reply(
        f"{context.active.name} greets this chat every day at {saved.at} ({tz}); next: {_when(upcoming)}."
    )


async def handle_on(context: CommandContext, args: str) -> Reply:
    when, zone_name = split_first(args)
    if not when:
        raise CommandError("Usage: /greet on HH:MM [time zone], e.g. /greet on 08:30 Asia/Shanghai")
    at = parse_time(when)
    greetings = context.greetings
    try:
        tz = greetings.zone(zone_name)
    except ValueError as exc:
        problem = str(exc)
        raise CommandError(f"{problem[:1].upper()}{problem[1:]}.") from None
    upcoming = await greetings.turn_on(
        context.incoming.key, at, zone_name, by=context.incoming.qualified_user
    )
    return Reply(
        f"{context.active.name} will greet this chat every day at {at:%H:%M} ({tz}); "
        f"the first greeting comes {_when(upcoming)}."
    )


async def handle_off(context: CommandContext, args: str) -> Reply:
    if await context.greetings.turn_off(context.incoming.key):
        return Reply("Daily greetings are off here.")
    return Reply("There was no daily greeting here.")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "greet",
            "a daily greeting from the active character",
            aliases=("问候",),
            default_verb="show",
            verbs=(
                Verb("show", "when the daily greeting comes", handle_show),
                Verb(
                    "on",
                    "greet this chat every day at a time",
                    handle_on,
                    usage="HH:MM [time zone]",
                    level=Level.CHAT_ADMIN,
                    aliases=("开",),
                ),
                Verb("off", "stop the daily greeting", handle_off, level=Level.CHAT_ADMIN, aliases=("关",)),
            ),
        )
    )
