"""Chat commands: one registry, one module per command family.

A command is a :class:`Command` with a name, Chinese or short aliases, a one-line summary and the
permission :class:`Level` it needs. :meth:`CommandRegistry.dispatch` checks the level and turns a
:class:`~bot.errors.CommandError` into a reply for the user, so handlers just raise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

from bot.errors import CommandError, PermissionDenied
from bot.messages import Reply, Role

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack, PackRegistry
    from bot.engine.screenshots import ScreenshotMatcher
    from bot.messages import Incoming
    from storage.repository import ChatState, Repository

COMMAND_PREFIXES = ("/", "／")


class Level(IntEnum):
    """Who may use a command."""

    MEMBER = 0
    CHAT_ADMIN = 1
    """Group admins and owners, users a superuser made bot admins of the chat (``/admin add``); in a
    private chat, the user (it is their own chat)."""
    SUPERUSER = 2

    @property
    def label(self) -> str:
        return {0: "everyone", 1: "group admins", 2: "bot superusers"}[self.value]


@dataclass(slots=True)
class CommandContext:
    """What a command handler may use."""

    incoming: Incoming
    config: BotConfig
    packs: PackRegistry
    repository: Repository
    active: CharacterPack
    screenshots: ScreenshotMatcher
    state: ChatState
    granted_admin: bool = False
    """A superuser made the sender a bot admin of this chat."""

    @property
    def level(self) -> Level:
        """Rights come from the config and the platform (and ``/admin add``), never from what is typed."""
        if self.config.is_superuser(self.incoming.qualified_user):
            return Level.SUPERUSER
        if (
            self.incoming.chat_type == "private"
            or self.incoming.sender.role in (Role.ADMIN, Role.OWNER)
            or self.granted_admin
        ):
            return Level.CHAT_ADMIN
        return Level.MEMBER


Handler = Callable[[CommandContext, str], Awaitable[Reply]]


class Completion(StrEnum):
    """What a command's argument names, so platforms with structured commands can offer choices."""

    CHARACTER = "character"


@dataclass(slots=True, frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler
    usage: str = ""
    level: Level = Level.MEMBER
    aliases: tuple[str, ...] = ()
    completion: Completion | None = None


def parse_command(text: str) -> tuple[str, str] | None:
    """``"/switch Orla"`` → ``("switch", "Orla")``; ``None`` when ``text`` is not a command."""
    stripped = text.strip()
    if not stripped.startswith(COMMAND_PREFIXES):
        return None
    name, _, args = stripped[1:].partition(" ")
    name = name.strip().casefold()
    if not name:
        return None
    return name, args.strip()


class CommandRegistry:
    """Commands by name and alias."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._names: dict[str, Command] = {}

    def add(self, command: Command) -> None:
        for name in (command.name, *command.aliases):
            if name in self._names:
                raise ValueError(f"command name {name!r} is taken by /{self._names[name].name}")
            self._names[name.casefold()] = command
        self._commands[command.name] = command

    def get(self, name: str) -> Command | None:
        return self._names.get(name.casefold())

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    async def dispatch(self, command: Command, context: CommandContext, args: str) -> Reply:
        """Run ``command`` if the user's level allows it; errors become the reply text."""
        try:
            if context.level < command.level:
                raise PermissionDenied(f"/{command.name} is for {command.level.label} only.")
            return await command.handler(context, args)
        except CommandError as exc:
            return Reply(str(exc))


def default_commands() -> CommandRegistry:
    """The registry with every built-in command."""
    from bot.commands import admins, characters, help, images, memory

    registry = CommandRegistry()
    for module in (help, characters, memory, images, admins):
        module.register(registry)
    return registry
