"""``/help``."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.messages import Reply


def register(registry: CommandRegistry) -> None:
    async def handle_help(context: CommandContext, args: str) -> Reply:
        lines = [f"Commands (talking to {context.active.name}: @ the bot or start with its name):"]
        for command in registry:
            usage = f" {command.usage}" if command.usage else ""
            names = "/".join(command.aliases)
            extra = f" (also /{names})" if names else ""
            only = f" [{command.level.label}]" if command.level > Level.MEMBER else ""
            lines.append(f"/{command.name}{usage}: {command.summary}{extra}{only}")
        return Reply("\n".join(lines))

    registry.add(Command("help", "list commands", handle_help, aliases=("帮助",)))
