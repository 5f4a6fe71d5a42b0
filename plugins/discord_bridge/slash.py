"""The core's chat commands as Discord slash commands.

Every command of the registry becomes an application command of the same name, with one text
option where it takes arguments (autocompleted with the characters where the command names one);
a command family becomes a group of subcommands.
An invocation runs through the router exactly like the text command, so permissions and replies
are the same on every platform.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.commands import Command, Completion, Verb
from bot.engine.registry import PackRegistry
from bot.messages import Attachment, Reply
from bot.router import Router
from plugins.discord_bridge.incoming import SpokenMessages, attachment_of, interaction_incoming
from plugins.discord_bridge.outgoing import REFUSED_OR_UNREACHABLE, chunks, files_of, name_prefix

log = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 100
CHOICES_LIMIT = 25
FILE_OPTION = "a character card (.png/.json/.charx), a pack .zip, ChatHaruhi .jsonl or a transcript"


def character_choices(packs: PackRegistry, typed: str) -> list[app_commands.Choice[str]]:
    """The characters whose id, name or an alias contains what the user has typed so far."""
    wanted = typed.casefold().strip()
    choices = [
        app_commands.Choice(name=f"{pack.name} ({pack.id})"[:DESCRIPTION_LIMIT], value=pack.id)
        for pack in packs
        if not wanted or any(wanted in name.casefold() for name in pack.names)
    ]
    return choices[:CHOICES_LIMIT]


class SlashCommands:
    """Builds the command tree of ``client`` from the router's command registry.

    A command family (``/character``) becomes a group whose verbs are its subcommands; a verb that
    reads files (``/character import``) gets a ``file`` option.
    """

    def __init__(self, client: discord.Client, router: Router, spoken: SpokenMessages) -> None:
        self.router = router
        self.spoken = spoken
        self.tree = app_commands.CommandTree(client)
        for command in router.commands:
            if command.verbs:
                group = app_commands.Group(name=command.name, description=command.summary[:DESCRIPTION_LIMIT])
                for verb in command.verbs:
                    group.add_command(self._app_command(f"{command.name} {verb.name}", verb))
                self.tree.add_command(group)
            else:
                self.tree.add_command(self._app_command(command.name, command))

    def _app_command(self, label: str, spec: Command | Verb) -> app_commands.Command[Any, ..., None]:
        """The application command for ``/label``; invoking it runs the text ``/label <text>``."""
        run = self.run
        packs = self.router.packs
        name = label.rpartition(" ")[2]
        description = spec.summary[:DESCRIPTION_LIMIT]

        async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return character_choices(packs, current)

        if isinstance(spec, Verb) and spec.takes_files:

            async def with_file(
                interaction: discord.Interaction,
                text: str | None = None,
                file: discord.Attachment | None = None,
            ) -> None:
                await run(interaction, label, text or "", (attachment_of(file),) if file is not None else ())

            described = app_commands.describe(text=spec.usage[:DESCRIPTION_LIMIT], file=FILE_OPTION)(
                with_file
            )
            return app_commands.Command(name=name, description=description, callback=described)

        if spec.usage:

            async def with_text(interaction: discord.Interaction, text: str | None = None) -> None:
                await run(interaction, label, text or "")

            callback = app_commands.describe(text=spec.usage[:DESCRIPTION_LIMIT])(with_text)
            if spec.completion is Completion.CHARACTER:
                callback = app_commands.autocomplete(text=complete)(callback)
                callback = app_commands.rename(text="character")(callback)
            return app_commands.Command(name=name, description=description, callback=callback)

        async def without_text(interaction: discord.Interaction) -> None:
            await run(interaction, label, "")

        return app_commands.Command(name=name, description=description, callback=without_text)

    async def run(
        self, interaction: discord.Interaction, label: str, args: str, files: tuple[Attachment, ...] = ()
    ) -> None:
        """Answer the slash command the way the router answers ``/label args`` typed as text."""
        incoming = interaction_incoming(interaction, f"/{label} {args}".strip(), files)
        await interaction.response.defer(thinking=True)
        try:
            replies = await self.router.handle(incoming)
        except Exception:
            log.exception("/%s failed in %s", label, incoming.key)
            replies = [Reply("Something went wrong; the bot's log says what.")]
        for reply in replies:
            posted = await self._follow_up(interaction, reply)
            await self.router.ledger.settle([reply], "posted" if posted else "failed")

    async def _follow_up(self, interaction: discord.Interaction, reply: Reply) -> bool:
        """Post ``reply`` as the answer to the slash command; ``False`` when Discord refused it."""
        for text, with_files in chunks(reply, prefix=name_prefix(reply, self.router.packs)):
            files = files_of(reply) if with_files else discord.utils.MISSING
            try:
                sent = await interaction.followup.send(text, files=files, wait=True)
            except REFUSED_OR_UNREACHABLE as exc:
                log.error(
                    "could not answer /%s: %s", interaction.command.name if interaction.command else "?", exc
                )
                return False
            if reply.character is not None:
                self.spoken.remember(sent.id, reply.character)
        return True
