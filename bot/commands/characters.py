"""``/switch``, ``/characters``, ``/who``, ``/character``: choosing and managing the chat's characters.

``/character`` verbs and who may use them:

* ``info``: everyone; ``disable``/``enable`` change this chat only: its admins;
* ``create``, ``import``, ``reload``, ``remove`` change the catalog every chat shares, and ``export``
  hands out a persona the bot never reveals in chat: they need a right over the catalog
  (:attr:`~bot.commands.Level.CATALOG`), which being the admin of one's own private chat is not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands import Command, CommandContext, CommandRegistry, Completion, Level, Verb, split_first
from bot.commands.creation import USAGE as CREATE_USAGE
from bot.commands.creation import handle_create
from bot.engine.pack_models import describe_model
from bot.engine.packs import PACK_ID, CharacterPack
from bot.errors import CommandError, PackError
from bot.messages import Attachment, ChatKey, Reply

if TYPE_CHECKING:
    from bot.catalog import PackCatalog

log = logging.getLogger(__name__)

REPLACE_WORDS = frozenset({"replace", "--replace", "覆盖"})
CARD_WORDS = frozenset({"card", "png", "卡片"})


def _entry(pack: CharacterPack) -> str:
    return f"{pack.id} — {pack.name}: {pack.description}"


def _choices(packs: list[CharacterPack] | tuple[CharacterPack, ...]) -> str:
    return ", ".join(f"{pack.id} ({pack.name})" for pack in packs)


def _pack_named(context: CommandContext, wanted: str) -> CharacterPack:
    if not wanted:
        raise CommandError(f"Which character? Available: {_choices(list(context.packs))}")
    match = context.packs.match(wanted)
    if match.pack is not None:
        return match.pack
    if match.candidates:
        raise CommandError(f"'{wanted}' could mean {_choices(match.candidates)}. Which one?")
    raise CommandError(f"No character matches '{wanted}'. Available: {_choices(list(context.packs))}")


async def handle_switch(context: CommandContext, args: str) -> Reply:
    if not args:
        raise CommandError(f"Usage: /switch <id | name | alias>. Available: {_choices(list(context.packs))}")
    pack = _pack_named(context, args)
    if pack.id in context.state.disabled:
        raise CommandError(f"{pack.name} is disabled in this chat; an admin can /character enable {pack.id}.")
    if pack.id == context.active.id:
        return Reply(f"{pack.name} is already here.")
    await context.repository.chats.set_active_character(context.incoming.key, pack.id)
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


async def handle_who(context: CommandContext, args: str) -> Reply:
    pack = context.active
    aliases = ", ".join(pack.aliases) or "none"
    lines = [f"Active character: {_entry(pack)} (call it: {aliases})"]
    if pack.settings.llm is not None:
        lines.append(f"It {describe_model(pack, context.config.llm)}.")
    return Reply("\n".join(lines))


# ---------------------------------------------------------------------- /character verbs


async def handle_info(context: CommandContext, args: str) -> Reply:
    pack = _pack_named(context, args)
    lines = [
        f"{pack.name} ({pack.id}) — {pack.description}",
        f"Called by: {', '.join(pack.aliases) or 'its name'} · language: {pack.settings.language}",
        f"{len(pack.scenes)} scenes, {len(pack.screenshots)} screenshots, {len(pack.lore)} lorebook entries",
    ]
    if pack.settings.greeting:
        lines.append(f"Greeting: {pack.settings.greeting}")
    lines.append(f"It {describe_model(pack, context.config.llm)}.")
    if pack.id in context.state.disabled:
        lines.append("Disabled in this chat.")
    return Reply("\n".join(lines))


async def handle_disable(context: CommandContext, args: str) -> Reply:
    pack = _pack_named(context, args)
    if len(context.packs) - len(context.state.disabled | {pack.id}) < 1:
        raise CommandError("That would leave this chat without any character.")
    changed = await context.repository.chats.set_character_disabled(context.incoming.key, pack.id, True)
    note = ""
    if pack.id == context.active.id:
        note = " It was the active character; the chat falls back to the default."
    return Reply(
        (f"{pack.name} is disabled in this chat." if changed else f"{pack.name} already was.") + note
    )


async def handle_enable(context: CommandContext, args: str) -> Reply:
    pack = _pack_named(context, args)
    changed = await context.repository.chats.set_character_disabled(context.incoming.key, pack.id, False)
    return Reply(f"{pack.name} is enabled in this chat." if changed else f"{pack.name} already was enabled.")


def _import_options(args: str) -> tuple[str | None, bool]:
    """``[id] [replace]`` in any order."""
    pack_id: str | None = None
    replace = False
    for word in args.split():
        if word.casefold() in REPLACE_WORDS:
            replace = True
        elif PACK_ID.match(word.casefold()) and pack_id is None:
            pack_id = word.casefold()
        else:
            raise CommandError(f"Usage: /character import {IMPORT_USAGE}")
    return pack_id, replace


def _check_size(attachment: Attachment, limit: int) -> None:
    if attachment.size is not None and attachment.size > limit:
        raise CommandError(
            f"{attachment.name} is {attachment.size:,} bytes, over the import limit of {limit:,} bytes."
        )


async def handle_import(context: CommandContext, args: str) -> Reply:
    """Acknowledge at once and import in the background: a slow or stalled download must not hold
    the chat (its messages wait for the command to finish), and the result is posted when ready."""
    pack_id, replace = _import_options(args)
    files = await context.files()
    if not files:
        raise CommandError(
            "Send the file (a character card .png/.json/.charx, a pack .zip, ChatHaruhi .jsonl or a "
            "transcript .txt) and reply to it with /character import, or send the command right after it."
        )
    attachment = files[0]
    catalog = context.catalog
    _check_size(attachment, catalog.limits.max_file_bytes)
    key = context.incoming.key
    # NOTE: the permission check ran before this handler; the job only carries out what it allowed.
    job = ImportJob(catalog, attachment, key, pack_id, replace, context.config.characters.download_timeout_s)
    catalog.background.start(job.run(), f"importing {attachment.name} for {key}")
    return Reply(f"Importing {attachment.name}… I'll post here when it is ready.")


@dataclass(slots=True, frozen=True)
class ImportJob:
    """``/character import``'s work after the acknowledgement: fetch the file within the deadline,
    install it, and post the outcome (or what went wrong) in the chat that asked."""

    catalog: PackCatalog
    attachment: Attachment
    report_to: ChatKey
    pack_id: str | None
    replace: bool
    timeout_s: float

    async def run(self) -> None:
        async with self.catalog.reports_held(self.report_to):
            await self._run()

    async def _run(self) -> None:
        name = self.attachment.name
        try:
            reply = await self._import()
        except CommandError as exc:
            log.warning("import of %s for %s failed: %s", name, self.report_to, exc)
            reply = Reply(str(exc), quote=False)
        except asyncio.CancelledError:
            log.warning("import of %s for %s stopped: the bot is shutting down", name, self.report_to)
            raise
        except Exception:
            log.exception("import of %s for %s failed", name, self.report_to)
            crashed = f"Could not import {name}: something went wrong in the bot (see its log)."
            reply = Reply(crashed, quote=False)
        await self.catalog.outbox.announce(self.report_to, reply)

    async def _import(self) -> Reply:
        name = self.attachment.name
        try:
            async with asyncio.timeout(self.timeout_s):
                data = await self.attachment.fetch(self.catalog.limits.max_file_bytes)
        except TimeoutError:
            raise CommandError(
                f"Gave up on {name}: it did not arrive within {self.timeout_s:g} s "
                "([characters] download_timeout_s)."
            ) from None
        try:
            result = await self.catalog.install_upload(
                name, data, pack_id=self.pack_id, replace=self.replace, report_to=self.report_to
            )
        except PackError as exc:
            raise CommandError(f"Could not import {_where(exc, name)}") from None
        pack = result.pack
        lines = [
            f"Imported {pack.name} as {pack.id} ({result.format}): {len(pack.scenes)} scenes, "
            f"{len(pack.lore)} lorebook entries. Live in every chat now: /switch {pack.id}",
            *(f"· {note}" for note in result.notes),
        ]
        return Reply("\n".join(lines), quote=False)


def _where(error: PackError, upload: str) -> str:
    """The error with the server's temp path cut down to what the user sent."""
    path = error.path
    parts = path.parts
    for index, part in enumerate(parts):
        if part.startswith("upload-") and index + 1 < len(parts):
            inside = "/".join(parts[index + 2 :])
            shown = f"{upload}/{inside}" if inside else upload
            line = f":{error.line}" if error.line is not None else ""
            return f"{shown}{line}: {error.reason}"
    return f"{upload}: {error}"


async def handle_reload(context: CommandContext, args: str) -> Reply:
    wanted = args.strip()
    match = context.packs.match(wanted) if wanted else None
    pack_id = match.pack.id if match is not None and match.pack is not None else wanted.casefold()
    if not pack_id:
        raise CommandError("Usage: /character reload <id>")
    try:
        pack = await context.catalog.reload(pack_id, report_to=context.incoming.key)
    except PackError as exc:
        raise CommandError(f"Could not reload {pack_id}: {exc}") from None
    return Reply(f"Reloaded {pack.name} ({pack.id}): {len(pack.scenes)} scenes. Live in every chat now.")


async def handle_remove(context: CommandContext, args: str) -> Reply:
    pack = _pack_named(context, args)
    try:
        await context.catalog.remove(pack.id)
    except PackError as exc:
        raise CommandError(f"Could not remove {pack.name}: {exc.reason}") from None
    return Reply(
        f"Removed {pack.name} ({pack.id}). Chats keep their memories of it; where it was active the "
        "default character takes over."
    )


async def handle_export(context: CommandContext, args: str) -> Reply:
    wanted, form = split_first(args)
    card = form.casefold() in CARD_WORDS
    if form and not card and form.casefold() != "zip":
        raise CommandError(f"Usage: /character export {EXPORT_USAGE}")
    pack = _pack_named(context, wanted)
    try:
        exported = await context.catalog.export(pack.id, "card" if card else "zip")
    except PackError as exc:
        raise CommandError(f"Could not export {pack.name}: {exc.reason}") from None
    what = "a Character Card V3 (PNG)" if card else "a pack zip"
    reply = Reply(f"{pack.name} as {what}: {exported.name}")
    reply.files.append(exported)
    return reply


IMPORT_USAGE = "[id] [replace] (replying to a file, or right after sending one)"
NAMED = Completion.CHARACTER
ADMINS = Level.CHAT_ADMIN
MANAGERS = Level.CATALOG
EXPORT_USAGE = "<id> [zip|card]"


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
            "see and manage characters",
            aliases=("角色管理",),
            verbs=(
                Verb(
                    "info", "a character's details", handle_info, "<id>", aliases=("详情",), completion=NAMED
                ),
                Verb(
                    "disable",
                    "hide a character in this chat",
                    handle_disable,
                    "<id>",
                    ADMINS,
                    completion=NAMED,
                ),
                Verb("enable", "show it again", handle_enable, "<id>", ADMINS, completion=NAMED),
                Verb(
                    "export",
                    "send a character as a file",
                    handle_export,
                    EXPORT_USAGE,
                    MANAGERS,
                    completion=NAMED,
                ),
                Verb("create", "make a new character", handle_create, CREATE_USAGE, MANAGERS),
                Verb(
                    "import",
                    "add a character from a file",
                    handle_import,
                    IMPORT_USAGE,
                    MANAGERS,
                    takes_files=True,
                ),
                Verb("reload", "read a pack folder again", handle_reload, "<id>", MANAGERS),
                Verb("remove", "delete a character", handle_remove, "<id>", MANAGERS, completion=NAMED),
            ),
        )
    )
