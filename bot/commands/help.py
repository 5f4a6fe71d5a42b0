"""``/help`` and ``/cancel``."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.messages import Reply


def _only(level: Level, context: CommandContext) -> str:
    return f" [{level.who(context.config)}]" if level is not Level.MEMBER else ""


def _details(command: Command, context: CommandContext) -> list[str]:
    """``command``'s usage, aliases and who may use it; a family's verbs a line each."""
    names = "/".join(command.aliases)
    extra = f" (also /{names})" if names else ""
    if not command.verbs:
        usage = f" {command.usage}" if command.usage else ""
        return [f"/{command.name}{usage}: {command.summary}{extra}{_only(command.level, context)}"]
    lines = [f"/{command.name}: {command.summary}{extra}"]
    for verb in command.verbs:
        usage = f" {verb.usage}" if verb.usage else ""
        lines.append(f"  /{command.name} {verb.name}{usage}: {verb.summary}{_only(verb.level, context)}")
    return lines


def register(registry: CommandRegistry) -> None:
    async def handle_help(context: CommandContext, args: str) -> Reply:
        """The commands, one line each (a family's verbs under ``/help NAME``): the list fits a
        chat window, the console's included."""
        if wanted := args.strip().lstrip("/"):
            command = registry.get(wanted.lower())
            if command is None:
                return Reply(f"No command /{wanted}. Send /help for the list.")
            return Reply("\n".join(_details(command, context)))
        lines = [f"Commands (talking to {context.active.name}: @ the bot or start with its name):"]
        for command in registry:
            if command.verbs:
                verbs = " · ".join(verb.name for verb in command.verbs)
                lines.append(f"/{command.name} {verbs}: {command.summary} (/help {command.name})")
            else:
                lines.extend(_details(command, context))
        return Reply("\n".join(lines))

    async def handle_cancel(context: CommandContext, args: str) -> Reply:
        incoming = context.incoming
        if context.conversations.cancel(incoming.key, incoming.sender.user_id):
            return Reply("Cancelled.")
        return Reply("Nothing to cancel.")

    registry.add(
        Command("help", "list commands", handle_help, aliases=("帮助",), usage="[command]")
    )
    registry.add(
        Command("cancel", "stop a command that is asking you questions", handle_cancel, aliases=("取消",))
    )
