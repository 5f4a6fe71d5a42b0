"""``/switch``, ``/characters``, ``/who``: choosing the chat's active character."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Completion
from bot.engine.packs import CharacterPack
from bot.errors import CommandError
from bot.messages import Reply


def _entry(pack: CharacterPack) -> str:
    return f"{pack.id} — {pack.name}: {pack.description}"


def _choices(packs: list[CharacterPack] | tuple[CharacterPack, ...]) -> str:
    return ", ".join(f"{pack.id} ({pack.name})" for pack in packs)


async def handle_switch(context: CommandContext, args: str) -> Reply:
    if not args:
        raise CommandError(f"Usage: /switch <id | name | alias>. Available: {_choices(list(context.packs))}")
    match = context.packs.match(args)
    if match.pack is None:
        if match.candidates:
            raise CommandError(f"'{args}' could mean {_choices(match.candidates)}. Which one?")
        raise CommandError(f"No character matches '{args}'. Available: {_choices(list(context.packs))}")
    pack = match.pack
    if pack.id == context.active.id:
        return Reply(f"{pack.name} is already here.")
    await context.repository.set_active_character(context.incoming.key, pack.id)
    greeting = pack.settings.greeting or f"{pack.name} is here."
    return Reply(f"[{pack.name}] {greeting}", character=pack.id)


async def handle_characters(context: CommandContext, args: str) -> Reply:
    lines = ["Characters (/switch <id>):"]
    for pack in context.packs:
        marker = " ← active" if pack.id == context.active.id else ""
        lines.append(f"• {_entry(pack)}{marker}")
    return Reply("\n".join(lines))


async def handle_who(context: CommandContext, args: str) -> Reply:
    pack = context.active
    aliases = ", ".join(pack.aliases) or "none"
    return Reply(f"Active character: {_entry(pack)} (call it: {aliases})")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "switch",
            "change this chat's character",
            handle_switch,
            usage="<id | name | alias>",
            aliases=("切换",),
            completion=Completion.CHARACTER,
        )
    )
    registry.add(
        Command("characters", "list the characters", handle_characters, aliases=("list", "角色", "角色列表"))
    )
    registry.add(Command("who", "show the active character", handle_who, aliases=("当前角色",)))
