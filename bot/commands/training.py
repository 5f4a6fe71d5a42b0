"""``/training on|off``: a chat's consent to the export of its exchanges as training data.

Off unless the chat's admins turn it on. A training-data export (``bot.training``) reads only the
chats that did (:meth:`storage.chats.Chats.training_chats`), and of those only what members said to a
character and what it answered, since the chat's last ``/reset``.
"""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level, Verb
from bot.messages import Reply

WHAT = (
    "what members say to the characters here and what the characters answer, since the last /reset "
    "(what is already stored, not only what comes from now on), may be exported by the bot's owner as "
    "training data for a character model (names replaced with pseudonyms, ids and links scrubbed)"
)
"""What the consent covers, as the end of a sentence."""
ON = f"Training export on: {WHAT}. /training off stops it."
OFF = (
    "Training export off: nothing said here goes into training data (an export made before stays as it was)."
)


async def handle_show(context: CommandContext, args: str) -> Reply:
    if await context.repository.chats.training(context.incoming.key):
        return Reply(f"Training export is on here: {WHAT}. /training off stops it.")
    return Reply(
        "Training export is off here: nothing said here goes into training data. "
        f"If a chat admin sends /training on, {WHAT}."
    )


async def handle_on(context: CommandContext, args: str) -> Reply:
    await context.repository.chats.set_training(context.incoming.key, True)
    return Reply(ON)


async def handle_off(context: CommandContext, args: str) -> Reply:
    await context.repository.chats.set_training(context.incoming.key, False)
    return Reply(OFF)


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "training",
            "whether this chat's exchanges with the characters may become training data",
            aliases=("训练",),
            default_verb="show",
            verbs=(
                Verb("show", "say whether this chat's exchanges may become training data", handle_show),
                Verb(
                    "on",
                    "allow the export of this chat's exchanges as training data",
                    handle_on,
                    level=Level.CHAT_ADMIN,
                    aliases=("开",),
                ),
                Verb(
                    "off",
                    "keep this chat out of training data",
                    handle_off,
                    level=Level.CHAT_ADMIN,
                    aliases=("关",),
                ),
            ),
        )
    )
