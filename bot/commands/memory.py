"""``/reset``: forgetting this chat's conversation."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.messages import Reply


async def handle_reset(context: CommandContext, args: str) -> Reply:
    forgotten = await context.repository.reset_memory(context.incoming.key)
    return Reply(
        f"Memory of this chat cleared ({forgotten} messages forgotten). {context.active.name} starts afresh."
    )


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "reset",
            "clear this chat's conversation memory",
            handle_reset,
            level=Level.CHAT_ADMIN,
            aliases=("重置",),
        )
    )
