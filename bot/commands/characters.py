"""``/switch``, ``/characters``, ``/who``, ``/character``: choosing and managing the chat's characters."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Completion, Level
from bot.engine.packs import CharacterPack
from bot.errors import CommandError, PermissionDenied
from bot.messages import Reply


def _entry(pack: CharacterPack) -> str:
    return f"{pack.id} — {pack.name}: {pack.description}"


def _choices(packs: list[CharacterPack] | tuple[CharacterPack, ...]) -> str:
    return ", ".join(f"{pack.id} ({pack.name})" for pack in packs)


async def handle_switch(context: CommandContext, args: str) -> Reply:
    if not args:
        raise CommandError(f"Usage: /switch <id | name | alias>. Available: {_choices(list(context.packs))}")
    pack = _pack_named(context, args)
    if pack.id in context.state.disabled:
        raise CommandError(f"{pack.name} is disabled in this chat; an admin can /character enable {pack.id}.")
    if pack.id == context.active.id:
        return Reply(f"{pack.name} is already here.")
    await context.repository.set_active_character(context.incoming.key, pack.id)
    greeting = pack.settings.greeting or f"{pack.name} is here."
    return Reply(f"[{pack.name}] {greeting}", character=pack.id)


async def handle_characters(context: CommandContext, args: str) -> Reply:
    lines = ["Characters (/switch <id>):"]
    for pack in context.packs:
        if pack.id in context.state.disabled:
            continue
        marker = " ← active" if pack.id == context.active.id else ""
        lines.append(f"• {_entry(pack)}{marker}")
    if context.state.disabled:
        lines.append(f"Disabled here: {', '.join(sorted(context.state.disabled))}")
    return Reply("\n".join(lines))


def _pack_named(context: CommandContext, wanted: str) -> CharacterPack:
    match = context.packs.match(wanted)
    if match.pack is not None:
        return match.pack
    if match.candidates:
        raise CommandError(f"'{wanted}' could mean {_choices(match.candidates)}. Which one?")
    raise CommandError(f"No character matches '{wanted}'. Available: {_choices(list(context.packs))}")


async def handle_character(context: CommandContext, args: str) -> Reply:
    verb, _, rest = args.strip().partition(" ")
    verb = verb.casefold()
    if verb not in CHARACTER_VERBS or not rest.strip():
        raise CommandError(f"Usage: /character {CHARACTER_USAGE}")
    pack = _pack_named(context, rest.strip())
    if verb == "info":
        return Reply(_info(pack, disabled=pack.id in context.state.disabled))
    if context.level < Level.CHAT_ADMIN:
        raise PermissionDenied(f"/character {verb} is for {Level.CHAT_ADMIN.label} only.")
    key = context.incoming.key
    if verb == "disable":
        if len(context.packs) - len(context.state.disabled | {pack.id}) < 1:
            raise CommandError("That would leave this chat without any character.")
        changed = await context.repository.set_character_disabled(key, pack.id, True)
        note = ""
        if pack.id == context.active.id:
            note = " It was the active character; the chat falls back to the default."
        return Reply(
            (f"{pack.name} is disabled in this chat." if changed else f"{pack.name} already was.") + note
        )
    changed = await context.repository.set_character_disabled(key, pack.id, False)
    return Reply(f"{pack.name} is enabled in this chat." if changed else f"{pack.name} already was enabled.")


def _info(pack: CharacterPack, *, disabled: bool) -> str:
    lines = [
        f"{pack.name} ({pack.id}) — {pack.description}",
        f"Called by: {', '.join(pack.aliases) or 'its name'} · language: {pack.settings.language}",
        f"{len(pack.scenes)} scenes, {len(pack.screenshots)} screenshots, {len(pack.lore)} lorebook entries",
    ]
    if pack.settings.greeting:
        lines.append(f"Greeting: {pack.settings.greeting}")
    if disabled:
        lines.append("Disabled in this chat.")
    return "\n".join(lines)


CHARACTER_VERBS = ("info", "disable", "enable")
CHARACTER_USAGE = "info|disable|enable <id | name>"


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
    registry.add(
        Command(
            "character",
            "a character's details; admins disable or enable it in this chat",
            handle_character,
            usage=CHARACTER_USAGE,
            aliases=("角色管理",),
        )
    )
