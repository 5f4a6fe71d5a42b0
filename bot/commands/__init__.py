r"""Chat commands: one registry, one module per command family.

A command is a :class:`Command` with a name, Chinese or short aliases, a one-line summary and the
permission :class:`Level` it needs; a command family such as ``/character`` is one command with
:class:`Verb`\ s, each with its own level. :meth:`CommandRegistry.dispatch` checks the level and turns
a :class:`~bot.errors.CommandError` into a reply for the user, so handlers just raise.

A handler that needs more from the user (``/character create``'s questions) calls
:meth:`CommandContext.expect`: the user's next message in that chat goes to the given handler.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from bot.errors import CommandError, PermissionDenied
from bot.messages import Attachment, ChatKey, Reply, Role

if TYPE_CHECKING:
    from bot.catalog import PackCatalog
    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack
    from bot.engine.registry import PackRegistry
    from bot.engine.screenshots import ScreenshotMatcher
    from bot.flow.speak import Speaker
    from bot.governor import Governor
    from bot.greetings import Greetings
    from bot.messages import Incoming
    from bot.scheduler import Scheduler
    from storage import ChatState, Repository

COMMAND_PREFIXES = ("/", "／")


class Level(Enum):
    """The right a command needs: a right over the place where the thing the command changes lives.

    Rights are not one ladder: the admin of a chat has no right over the characters every chat shares,
    and a catalog manager has none over a chat's settings. :meth:`CommandContext.allows` decides.
    """

    MEMBER = "member"
    CHAT_ADMIN = "chat admin"
    """This chat's settings and memory: group admins and owners, users a superuser made bot admins of
    the chat (``/admin add``); in a private chat, the user (it is their own chat)."""
    CATALOG = "catalog manager"
    """The catalog of characters every chat shares (create, import, reload, remove, export): the
    ``[admins] catalog_managers``; with ``character_managers = "group_admins"``, also the admins of any
    group, never the user of a private chat as such."""
    SUPERUSER = "superuser"
    """The whole bot (every chat): ``[admins] superusers``, who also hold every other right."""

    def who(self, config: BotConfig) -> str:
        """Who holds this right, for "… is for <who> only" and ``/help``."""
        if self is Level.CATALOG:
            if config.admins.character_managers == "group_admins":
                return "admins of a group, catalog managers and bot superusers"
            return "bot superusers and catalog managers"
        return {
            Level.MEMBER: "everyone",
            Level.CHAT_ADMIN: "group admins",
            Level.SUPERUSER: "bot superusers",
        }[self]


@dataclass(slots=True)
class CommandContext:
    """What a command handler may use."""

    incoming: Incoming
    config: BotConfig
    catalog: PackCatalog
    repository: Repository
    active: CharacterPack
    state: ChatState
    conversations: Conversations
    scheduler: Scheduler
    greetings: Greetings
    granted_admin: bool = False
    """A superuser made the sender a bot admin of this chat."""
    recent_files: tuple[Attachment, ...] = ()
    """Files the sender posted in this chat shortly before (see :class:`RecentFiles`)."""
    governor: Governor | None = None
    """The router's rate limits and budgets (``/usage`` reads its day)."""
    speaker: Speaker | None = None
    """The router's voice stage (``/voice`` says which engine a character speaks with)."""
    running: tuple[str, Level] = ("", Level.MEMBER)
    """The command being run (``/character create``) and the right it needed (see :meth:`demand`)."""

    @property
    def packs(self) -> PackRegistry:
        return self.catalog.packs

    @property
    def screenshots(self) -> ScreenshotMatcher:
        return self.catalog.screenshots

    @property
    def superuser(self) -> bool:
        return self.config.is_superuser(self.incoming.qualified_user)

    @property
    def group_admin(self) -> bool:
        """An admin or owner of this group, by the platform's role or a ``/admin add`` grant here."""
        return self.incoming.chat_type == "group" and (
            self.incoming.sender.role in (Role.ADMIN, Role.OWNER) or self.granted_admin
        )

    def allows(self, level: Level) -> bool:
        """Whether the sender holds ``level`` here. Rights come from the config and the platform (and
        ``/admin add``), never from what is typed."""
        if level is Level.MEMBER or self.superuser:
            return True
        if level is Level.CHAT_ADMIN:
            return self.incoming.chat_type == "private" or self.group_admin
        if level is Level.CATALOG:
            # NOTE: a private chat's user is its admin, but that chat is all it rules: the catalog is
            # every chat's, so only a group's admins count (and only when the config says so).
            admins = self.config.admins
            return self.config.is_catalog_manager(self.incoming.qualified_user) or (
                admins.character_managers == "group_admins" and self.group_admin
            )
        return False

    def demand(self, label: str, level: Level) -> None:
        """Refuse ``label`` (``/character import``) unless the sender holds ``level`` here, saying who
        may; remember it as the command being run."""
        if not self.allows(level):
            refusal = f"{label} is for {level.who(self.config)} only."
            if level is Level.CATALOG and self.incoming.chat_type == "private":
                refusal += " Your own private chat gives no right over the characters every chat shares."
            raise PermissionDenied(refusal)
        self.running = (label, level)

    def expect(self, step: Handler) -> None:
        """Send the user's next message in this chat (``@`` or not) to ``step`` instead of a character.

        Only the same user in the same chat can answer, and the step runs only if they still hold the
        right the command needed: it is checked again with each answer (a right can be taken away
        between two messages).
        """
        label, level = self.running

        async def checked(context: CommandContext, text: str) -> Reply:
            context.demand(label, level)
            return await step(context, text)

        self.conversations.expect(self.incoming.key, self.incoming.sender.user_id, checked)

    async def files(self) -> tuple[Attachment, ...]:
        """The files this command is about: sent with it, else in the message it replies to, else the
        ones the sender posted here just before."""
        if self.incoming.attachments:
            return self.incoming.attachments
        if self.incoming.quoted is not None and (quoted := await self.incoming.quoted()):
            return quoted
        return self.recent_files


Handler = Callable[[CommandContext, str], Awaitable[Reply]]


class Conversations:
    """Commands waiting for a user's next message, per chat and user, forgotten after ``ttl_s``."""

    def __init__(self, ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._waiting: dict[tuple[ChatKey, str], tuple[Handler, float]] = {}

    def expect(self, key: ChatKey, user_id: str, step: Handler) -> None:
        self._waiting[(key, user_id)] = (step, self._clock() + self.ttl_s)

    def waiting(self, key: ChatKey, user_id: str) -> bool:
        entry = self._waiting.get((key, user_id))
        return entry is not None and entry[1] > self._clock()

    def take(self, key: ChatKey, user_id: str) -> Handler | None:
        """The step waiting for this user's message, removed (a step that wants more asks again)."""
        entry = self._waiting.pop((key, user_id), None)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def cancel(self, key: ChatKey, user_id: str) -> bool:
        return self.take(key, user_id) is not None

    def __len__(self) -> int:
        now = self._clock()
        return sum(deadline > now for _step, deadline in self._waiting.values())


class RecentFiles:
    """The files each user last posted in each chat, for a command sent in a later message.

    Many clients cannot send a file and text together (QQ among them), so ``/character import`` may
    come just after the file. At most ``capacity`` entries, each kept ``ttl_s``.
    """

    def __init__(
        self, ttl_s: float = 600.0, capacity: int = 1000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._clock = clock
        self._files: OrderedDict[tuple[ChatKey, str], tuple[tuple[Attachment, ...], float]] = OrderedDict()

    def keep(self, incoming: Incoming) -> None:
        if not incoming.attachments:
            return
        entry = (incoming.key, incoming.sender.user_id)
        self._files[entry] = (incoming.attachments, self._clock() + self.ttl_s)
        self._files.move_to_end(entry)
        while len(self._files) > self.capacity:
            self._files.popitem(last=False)

    def of(self, incoming: Incoming) -> tuple[Attachment, ...]:
        found = self._files.get((incoming.key, incoming.sender.user_id))
        if found is None or found[1] <= self._clock():
            return ()
        return found[0]


class Completion(StrEnum):
    """What a command's argument names, so platforms with structured commands can offer choices."""

    CHARACTER = "character"


@dataclass(slots=True, frozen=True)
class Verb:
    """One action of a command family: ``/character import`` is the verb ``import`` of ``character``."""

    name: str
    summary: str
    handler: Handler
    usage: str = ""
    level: Level = Level.MEMBER
    aliases: tuple[str, ...] = ()
    completion: Completion | None = None
    takes_files: bool = False
    """The verb reads files the user sends (platforms with structured commands offer a file option)."""


@dataclass(slots=True, frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler | None = None
    """What runs the command; ``None`` for a family that only has :attr:`verbs`."""
    usage: str = ""
    level: Level = Level.MEMBER
    aliases: tuple[str, ...] = ()
    completion: Completion | None = None
    verbs: tuple[Verb, ...] = ()
    default_verb: str | None = None
    """The verb a bare ``/command`` runs; without one it answers with the usage."""

    @property
    def verb_usage(self) -> str:
        return " · ".join(f"{verb.name} {verb.usage}".strip() for verb in self.verbs)

    def resolve(self, args: str) -> tuple[str, Handler, Level, str]:
        """The label (``/character import``), handler, level and arguments that ``args`` calls for."""
        if not self.verbs:
            assert self.handler is not None, f"/{self.name} has neither a handler nor verbs"
            return f"/{self.name}", self.handler, self.level, args
        first, rest = split_first(args)
        wanted = first.casefold() or self.default_verb
        for verb in self.verbs:
            if wanted is not None and wanted in (verb.name, *verb.aliases):
                return f"/{self.name} {verb.name}", verb.handler, verb.level, rest
        raise CommandError(f"Usage: /{self.name} {self.verb_usage}")


_FIRST_WORD = re.compile(r"\s*(\S*)\s*(.*)", re.DOTALL)


def split_first(text: str) -> tuple[str, str]:
    """``"create wren Wren"`` → ``("create", "wren Wren")``; any whitespace, newlines included, separates."""
    match = _FIRST_WORD.fullmatch(text)
    assert match is not None
    return match[1], match[2].strip()


def parse_command(text: str) -> tuple[str, str] | None:
    """``"/switch Orla"`` → ``("switch", "Orla")``; ``None`` when ``text`` is not a command."""
    stripped = text.strip()
    if not stripped.startswith(COMMAND_PREFIXES):
        return None
    name, args = split_first(stripped[1:])
    name = name.casefold()
    if not name or stripped[1:2].isspace():
        return None
    return name, args


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
        """Run ``command`` (or the verb ``args`` names) if the user's level allows it."""
        try:
            label, handler, level, rest = command.resolve(args)
            context.demand(label, level)
            return await handler(context, rest)
        except CommandError as exc:
            return Reply(str(exc))

    async def continue_with(self, step: Handler, context: CommandContext, text: str) -> Reply:
        """Run a step a command left waiting for the user's next message (:meth:`CommandContext.expect`)."""
        try:
            return await step(context, text)
        except CommandError as exc:
            return Reply(str(exc))


def default_commands() -> CommandRegistry:
    """The registry with every built-in command."""
    from bot.commands import (
        admins,
        characters,
        greetings,
        help,
        images,
        manners,
        memory,
        training,
        usage,
        voice,
    )

    registry = CommandRegistry()
    for module in (help, characters, memory, manners, greetings, images, voice, training, admins, usage):
        module.register(registry)
    return registry
