"""``/admin add|remove|list``: superusers make users bot admins of one chat."""

from __future__ import annotations

import re

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.errors import CommandError
from bot.messages import Reply

USAGE = "add|remove @user (or a user id) · list"
_USER_ID = re.compile(r"^@?(\d{1,25})$")


def _target(context: CommandContext, args: str) -> str:
    """The user the command is about: the one mentioned, else a user id typed after the verb."""
    if context.incoming.mentions:
        return context.incoming.mentions[0]
    match = _USER_ID.match(args.strip())
    if match is None:
        raise CommandError(f"Whom? Mention the user or give their id: /admin {USAGE}")
    return match[1]


async def handle_admin(context: CommandContext, args: str) -> Reply:
    verb, _, rest = args.strip().partition(" ")
    key = context.incoming.key
    if verb in ("list", ""):
        admins = await context.repository.chat_admins(key)
        if not admins:
            return Reply("No bot admins granted here (group admins and owners always are).")
        return Reply("Bot admins of this chat: " + ", ".join(admins))
    if context.level < Level.SUPERUSER:
        raise CommandError(f"/admin {verb} is for {Level.SUPERUSER.label} only.")
    if context.incoming.chat_type == "private":
        raise CommandError("/admin add works in a group: a private chat's user is already its admin.")
    user = _target(context, rest)
    if verb == "add":
        added = await context.repository.grant_admin(key, user, granted_by=context.incoming.qualified_user)
        return Reply(f"{user} is now a bot admin here." if added else f"{user} already is a bot admin here.")
    if verb == "remove":
        removed = await context.repository.revoke_admin(key, user)
        return Reply(
            f"{user} is no longer a bot admin here." if removed else f"{user} was not a bot admin here."
        )
    raise CommandError(f"Usage: /admin {USAGE}")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "admin",
            "list this chat's bot admins; superusers add or remove them",
            handle_admin,
            usage=USAGE,
            aliases=("管理员",),
        )
    )
