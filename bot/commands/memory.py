"""``/reset``, ``/memory``, ``/forget``, ``/room``, ``/jobs``: what the characters remember of a chat,
and the jobs that keep it."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level, Verb
from bot.errors import CommandError
from bot.messages import Reply


async def handle_reset(context: CommandContext, args: str) -> Reply:
    forgotten = await context.repository.chats.reset_memory(context.incoming.key)
    return Reply(
        f"Memory of this chat cleared ({forgotten} messages forgotten). {context.active.name} starts afresh."
    )


def _room_on(context: CommandContext) -> bool:
    chosen = context.state.room_context
    return context.config.memory.room_context if chosen is None else chosen


async def handle_memory(context: CommandContext, args: str) -> Reply:
    pack = context.active
    count, since = await context.repository.messages.character_memory(context.incoming.key, pack.id)
    if count == 0:
        lines = [f"{pack.name} has no memories of this chat yet."]
    else:
        day = since.date().isoformat() if since is not None else "?"
        lines = [f"{pack.name} remembers {count} messages exchanged in this chat since {day}."]
    if context.incoming.chat_type == "group":
        room = "on" if _room_on(context) else "off"
        lines.append(f"Talk addressed to no character is kept as context: {room} (/room on|off).")
    summary, _covered = await context.repository.summaries.get(context.incoming.key, pack.id)
    if summary:
        lines.append(f"In short: {summary}")
    lines.append(f"Other characters' exchanges here are not part of what {pack.name} knows.")
    return Reply("\n".join(lines))


async def handle_jobs(context: CommandContext, args: str) -> Reply:
    jobs = context.scheduler.jobs(chat=context.incoming.key)
    if not jobs:
        return Reply("No scheduled jobs.")
    lines = ["Scheduled jobs:"]
    for job in jobs:
        when = job.next_run.strftime("%Y-%m-%d %H:%M %Z") if job.next_run is not None else "not scheduled"
        lines.append(f"• {job.name} ({job.id}): next run {when}")
    return Reply("\n".join(lines))


async def handle_forget_character(context: CommandContext, args: str) -> Reply:
    pack = context.active
    erased = await context.repository.messages.forget_character(context.incoming.key, pack.id)
    return Reply(f"{pack.name} forgot this chat: {erased} messages erased.")


async def handle_forget_me(context: CommandContext, args: str) -> Reply:
    incoming = context.incoming
    erased = await context.repository.forget_user(incoming.platform, incoming.sender.user_id)
    return Reply(f"Erased {erased} of your messages, in every chat on this platform.")


async def handle_room(context: CommandContext, args: str) -> Reply:
    if context.incoming.chat_type != "group":
        raise CommandError("/room is for groups: in a private chat every message is addressed.")
    wanted = args.strip().casefold()
    if wanted in ("on", "off"):
        await context.repository.chats.set_room_context(context.incoming.key, wanted == "on")
        return Reply(
            "Group talk is kept as context for the characters."
            if wanted == "on"
            else "Group talk not addressed to a character is no longer kept."
        )
    if wanted:
        raise CommandError("Usage: /room on|off")
    return Reply(f"Room context is {'on' if _room_on(context) else 'off'} here.")


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
    registry.add(
        Command(
            "memory", "what the active character remembers of this chat", handle_memory, aliases=("记忆",)
        )
    )
    registry.add(
        Command(
            "forget",
            "erase memories",
            aliases=("遗忘",),
            default_verb="character",
            verbs=(
                Verb(
                    "character",
                    "erase what the active character remembers of this chat",
                    handle_forget_character,
                    level=Level.CHAT_ADMIN,
                ),
                Verb("me", "erase everything you said, in every chat", handle_forget_me, aliases=("我",)),
            ),
        )
    )
    registry.add(
        Command("jobs", "the bot's scheduled jobs", handle_jobs, level=Level.CHAT_ADMIN, aliases=("任务",))
    )
    registry.add(
        Command(
            "room",
            "keep group talk not addressed to a character as context, or not",
            handle_room,
            usage="on|off",
            level=Level.CHAT_ADMIN,
            aliases=("群聊上下文",),
        )
    )
