"""``/admin add|remove|list``: superusers make users bot admins of one chat."""

from __future__ import annotations

import re

from bot.commands import Command, CommandContext, CommandRegistry, Level, Verb
from bot.errors import CommandError
from bot.messages import Reply

_USER_ID = re.compile(r"^@?(\d{1,25})$")


def _target(context: CommandContext, args: str) -> str:
    """The user the command is about: the one mentioned, else a user id typed after the verb."""
    if context.incoming.mentions:
        return context.incoming.mentions[0]
    match = _USER_ID.match(args.strip())
    if match is None:
        raise CommandError("Whom? Mention the user or give their id: /admin add|remove @user")
    return match[1]


def _in_group(context: CommandContext) -> None:
    if context.incoming.chat_type == "private":
        raise CommandError("/admin works in a group: a private chat's user is already its admin.")


async def handle_list(context: CommandContext, args: str) -> Reply:
    admins = await context.repository.chats.admins(context.incoming.key)
    if not admins:
        return Reply("No bot admins granted here (group admins and owners always are).")
    return Reply("Bot admins of this chat: " + ", ".join(admins))


async def handle_add(context: CommandContext, args: str) -> Reply:
    _in_group(context)
    user = _target(context, args)
    added = await context.repository.chats.grant_admin(
        context.incoming.key, user, granted_by=context.incoming.qualified_user
    )
    return Reply(f"{user} is now a bot admin here." if added else f"{user} already is a bot admin here.")


async def handle_remove(context: CommandContext, args: str) -> Reply:
    _in_group(context)
    user = _target(context, args)
    removed = await context.repository.chats.revoke_admin(context.incoming.key, user)
    return Reply(f"{user} is no longer a bot admin here." if removed else f"{user} was not a bot admin here.")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "admin",
            "bot admins of this chat",
            aliases=("管理员",),
            default_verb="list",
            verbs=(
                Verb("list", "who was made a bot admin here", handle_list),
                Verb("add", "make a user a bot admin here", handle_add, "@user", Level.SUPERUSER),
                Verb("remove", "take it back", handle_remove, "@user", Level.SUPERUSER),
            ),
        )
    )
