"""The router: is a message a command, a call to a character, or room talk?

* ``/command ...`` (with or without ``@``) → the command registry;
* ``@bot ...`` or a private message → the chat's active character answers, or the character the
  platform says is addressed (a reply to that character's message, ``Incoming.character``);
* a message that opens with a character's name or alias (``Orla, ...`` / ``小满，...``) → that
  character answers (the active one, or another one without switching);
* the next message of a user a command is asking questions (``/character create``) → that command;
* anything else → no reply (files are remembered a while for a ``/character import`` just after).

A chat whose active character was removed is told once which character took over.

Messages of one chat are handled one at a time, in order; different chats run concurrently.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.commands import CommandContext, CommandRegistry, Conversations, RecentFiles, parse_command
from bot.engine.prompt import TokenCounter, Turn
from bot.engine.screenshots import screenshot_image
from bot.errors import JobError
from bot.governor import Governor, slow_down_line, spent_line
from bot.greetings import Greetings, greeting_cue
from bot.messages import ChatKey, Incoming, Reply
from storage.claims import Claim
from storage.db import STORAGE_FAILURES

if TYPE_CHECKING:
    from bot.catalog import PackCatalog
    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack
    from bot.engine.responder import Responder
    from bot.health import StorageWatch
    from bot.ledger import Ledger
    from bot.outbox import Outbox
    from bot.scheduler import Scheduler
    from storage import ChatState, Repository, StoredMessage

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 32
_NAME_UNSAFE = re.compile(r"[\s:：「」\[\]]+")


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a note of how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [… {len(text) - limit:,} more characters cut]"


def speaker_name(name: str, fallback: str) -> str:
    """A display name safe to put in the script: no brackets or colons that could fake a line."""
    cleaned = _NAME_UNSAFE.sub(" ", name).strip()[:MAX_NAME_CHARS]
    return cleaned or fallback


class ChatLocks:
    """One lock per chat, dropped again when nobody holds or waits for it.

    ``shared`` takes the chat's lock across processes (PostgreSQL's advisory locks), once this
    process's own turn has come, so several processes on one database never interleave a chat.
    """

    def __init__(self, shared: Callable[[ChatKey], AbstractAsyncContextManager[None]] | None = None) -> None:
        self._locks: dict[ChatKey, tuple[asyncio.Lock, int]] = {}
        self._shared = shared

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock, self._shared(key) if self._shared is not None else nullcontext():
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class ScreenshotCooldown:
    """At most one screenshot per chat every ``seconds`` (QQ rate-limits accounts that post bursts)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: dict[ChatKey, float] = {}

    def ready(self, key: ChatKey) -> bool:
        last = self._last.get(key)
        return last is None or self._clock() - last >= self.seconds

    def used(self, key: ChatKey) -> None:
        self._last[key] = self._clock()


@dataclass(slots=True)
class Said:
    """A message that is not a command, once stored: who owes it an answer, and the chat's manners."""

    state: ChatState
    notices: list[Reply]
    chattiness: float
    debounce_s: float
    owed: dict[str, int] = field(default_factory=dict)
    """The characters it called (or the one it addressed), by id, with the stored message's id."""
    room_message: int | None = None
    """The id of the message kept as room talk (addressed to no one)."""
    room_text: str = ""


class Bursts:
    """The debounce: a burst of messages from one user in one chat gets one answer, to its last message.

    Each message joins its sender's burst with the characters it owes an answer; after waiting, only
    the newest message of the burst answers, for all of them, each answering the newest message of
    the burst it witnessed (room talk is witnessed by all).
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[ChatKey, str], tuple[int, dict[str, int]]] = {}
        self._tokens = itertools.count(1)

    def add(self, burst: tuple[ChatKey, str], said: Said) -> int:
        token = next(self._tokens)
        _previous, owed = self._pending.get(burst, (0, {}))
        if said.room_message is not None:
            owed = dict.fromkeys(owed, said.room_message)
        self._pending[burst] = (token, {**owed, **said.owed})
        return token

    async def settle(self, burst: tuple[ChatKey, str], token: int, seconds: float) -> dict[str, int] | None:
        """Wait ``seconds``; then what the burst owes (character → message to answer) if ``token`` is
        still its newest message, else ``None`` (a newer message answers)."""
        await asyncio.sleep(seconds)
        latest, owed = self._pending.get(burst, (0, {}))
        if latest != token:
            return None
        del self._pending[burst]
        return owed


class Router:
    """Routes each :class:`Incoming` to a command or a character and returns the replies."""

    def __init__(
        self,
        *,
        config: BotConfig,
        catalog: PackCatalog,
        repository: Repository,
        responder: Responder,
        commands: CommandRegistry,
        scheduler: Scheduler,
        outbox: Outbox,
        ledger: Ledger,
        chance: random.Random | None = None,
        process: str = "",
        governor: Governor | None = None,
        storage_watch: StorageWatch | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.catalog = catalog
        self.packs = catalog.packs
        self.repository = repository
        self.responder = responder
        self.commands = commands
        self.locks = ChatLocks(repository.chat_lock)
        self.process = process
        """This runtime's name in message claims (``host:pid:random``)."""
        self.cooldown = ScreenshotCooldown(config.images.cooldown_s)
        self.governor = governor or Governor(config, repository, TokenCounter.default())
        self.conversations = Conversations()
        self.recent_files = RecentFiles()
        self.bursts = Bursts()
        self.chance = chance or random.Random()
        """Rolls the dice of ``[groups] chattiness``."""
        self.outbox = outbox
        self.ledger = ledger
        """Where every reply is recorded before it is posted."""
        self.storage_watch = storage_watch
        """Told when the database fails (see :mod:`bot.health`)."""
        self.busy = timedelta(seconds=2 * config.llm.reply_deadline_s + config.groups.debounce_s)
        """How long another process may still be answering a message it claimed."""
        self.greetings = Greetings(
            repository=repository, scheduler=scheduler, config=config.scheduler, send=self.greet
        )

    def is_addressed(self, incoming: Incoming) -> bool:
        """Whether :meth:`handle` will answer ``incoming`` (platforms show "typing…" for these)."""
        text = incoming.text.strip()
        if not text:
            return False
        if (parsed := parse_command(text)) is not None:
            return incoming.to_me or self.commands.get(parsed[0]) is not None
        if self.conversations.waiting(incoming.key, incoming.sender.user_id):
            return True
        return incoming.to_me or bool(self.packs.called(text, 1)[0])

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Everything the bot says in answer to ``incoming`` (often nothing).

        When the database fails, the storage watch hears of it and an addressed message gets, once
        per chat, a notice that nothing can be remembered now.
        """
        try:
            return await self._handle(incoming)
        except STORAGE_FAILURES as exc:
            if self.storage_watch is None:
                raise
            await self.storage_watch.failed(str(exc).splitlines()[0])
            return self.storage_watch.notice_for(incoming.key) if self.is_addressed(incoming) else []

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        self.recent_files.keep(incoming)
        text = clipped(incoming.text.strip(), self.config.memory.max_message_chars)
        if not text:
            return []
        parsed = parse_command(text)
        key = incoming.key
        async with self.locks.hold(key):
            earlier: dict[str | None, int] = {}
            if incoming.message_id is not None:
                claim = await self.repository.claims.claim(
                    key, incoming.message_id, by=self.process, busy=self.busy
                )
                if claim is Claim.TAKEN:
                    log.debug("message %s in %s is another process's (or answered)", incoming.message_id, key)
                    return []
                if claim is Claim.RETRY:
                    log.info("answering %s in %s: it was left unanswered before", incoming.message_id, key)
                    earlier = await self.repository.messages.stored_from(key, incoming.message_id)
            if parsed is not None:
                command = self.commands.get(parsed[0])
                if command is not None:
                    context, notices = await self._command_context(incoming)
                    return await self._record(
                        incoming, [*notices, await self.commands.dispatch(command, context, parsed[1])]
                    )
                if incoming.to_me:
                    return await self._record(
                        incoming, [Reply(f"Unknown command /{parsed[0]}. Send /help for the list.")]
                    )
                return []
            step = self.conversations.take(key, incoming.sender.user_id)
            if step is not None:
                context, notices = await self._command_context(incoming)
                return await self._record(
                    incoming, [*notices, await self.commands.continue_with(step, context, text)]
                )
            said = await self._take(incoming, text, earlier)
            if not said.debounce_s:
                return await self._record(
                    incoming, [*said.notices, *await self._reply(incoming, said, said.owed)]
                )
            burst = (key, incoming.sender.user_id)
            token = self.bursts.add(burst, said)
        owed = await self.bursts.settle(burst, token, said.debounce_s)
        async with self.locks.hold(key):
            if owed is None:
                return await self._record(incoming, said.notices)
            return await self._record(incoming, [*said.notices, *await self._reply(incoming, said, owed)])

    async def _record(self, incoming: Incoming, replies: list[Reply]) -> list[Reply]:
        """Record ``replies`` in the ledger (the characters' lines join their history) and return them."""
        names = {
            pack.id: pack.name
            for reply in replies
            if reply.character and (pack := self.packs.get(reply.character)) is not None
        }
        await self.ledger.record(
            incoming.key, replies, account=incoming.account, answers=incoming.message_id, names=names
        )
        return replies

    async def _take(self, incoming: Incoming, text: str, earlier: Mapping[str | None, int]) -> Said:
        """Store a message that is not a command, and note which characters owe it an answer.

        ``earlier`` holds what an earlier attempt at this same message stored; it is reused, not
        stored twice.
        """
        calls, rest = self.packs.called(text, self.config.groups.max_characters_per_message)
        if calls or incoming.to_me:
            state, notices = await self._state(incoming)
        else:
            state, notices = await self.chat_state(incoming), []
        calls = [pack for pack in calls if pack.id not in state.disabled]
        manners = self.config.groups
        said = Said(
            state,
            notices,
            chattiness=manners.chattiness if state.chattiness is None else state.chattiness,
            debounce_s=manners.debounce_s if state.debounce_s is None else state.debounce_s,
        )
        if not calls and not incoming.to_me:
            said.room_message = earlier.get(None) or await self._keep_room_talk(incoming, text, state)
            said.room_text = text
            return said
        addressed = self.packs.get(incoming.character) if incoming.character else None
        if addressed is not None and addressed.id in state.disabled:
            addressed = None
        display, _name = await self._speaker(incoming)
        for pack in calls or [addressed or self.active_pack(state)]:
            if (stored := earlier.get(pack.id)) is not None:
                said.owed[pack.id] = stored
                continue
            # NOTE: the message is committed before the model is called, so a crash loses nothing said.
            said.owed[pack.id] = await self.repository.messages.add(
                incoming.key,
                role="user",
                character_id=pack.id,
                user_id=incoming.sender.user_id,
                user_name=display,
                text=(rest or text) if calls else text,
                platform_message_id=incoming.message_id,
            )
        return said

    async def _reply(self, incoming: Incoming, said: Said, owed: Mapping[str, int]) -> list[Reply]:
        """The answers of the characters ``owed`` (to the messages given); with none, maybe the active
        character joins the talk unprompted."""
        answering = [
            (pack, message) for pack_id, message in owed.items() if (pack := self.packs.get(pack_id))
        ]
        unprompted = (
            not answering
            and incoming.chat_type == "group"
            and said.chattiness > 0
            and self.chance.random() < said.chattiness
        )
        if unprompted:
            pack = self.active_pack(said.state)
            if said.room_message is None:
                said.room_message = await self.repository.messages.add(
                    incoming.key,
                    role="user",
                    character_id=pack.id,
                    user_id=incoming.sender.user_id,
                    user_name=(await self._speaker(incoming))[0],
                    text=said.room_text,
                    platform_message_id=incoming.message_id,
                )
            answering = [(pack, said.room_message)]
        answers: list[Reply] = []
        for pack, message in answering:
            decision = await self.governor.decide(incoming)
            if decision.verdict != "answer":
                log.warning(
                    "%s: %s for %s (%s)", incoming.key, decision.verdict, incoming.sender.user_id, pack.id
                )
                if decision.verdict == "slow_down":
                    answers.append(Reply(slow_down_line(pack), character=pack.id))
                elif decision.verdict == "spent":
                    answers.append(Reply(spent_line(pack), character=pack.id))
                break
            reply = await self._answer(incoming, said.state, pack, message, model=decision.model)
            if reply is not None:
                reply.quote = not unprompted
                answers.append(reply)
        return answers

    async def _command_context(self, incoming: Incoming) -> tuple[CommandContext, list[Reply]]:
        state, notices = await self._state(incoming)
        context = CommandContext(
            incoming,
            self.config,
            self.catalog,
            self.repository,
            self.active_pack(state),
            state,
            self.conversations,
            self.scheduler,
            self.greetings,
            granted_admin=await self.repository.chats.is_admin(incoming.key, incoming.sender.user_id),
            recent_files=self.recent_files.of(incoming),
            governor=self.governor,
        )
        return context, notices

    async def _state(self, incoming: Incoming) -> tuple[ChatState, list[Reply]]:
        """The chat's state, and a notice when its active character has been removed since.

        The notice comes with the chat's next message rather than at removal time, so a chat on a
        platform that is not connected then (or a pack deleted while the bot was down) is told too.
        """
        state = await self.chat_state(incoming)
        removed = state.active_character
        if removed is None or removed in self.packs:
            return state, []
        for key in (incoming.key, incoming.parent_key):
            if key is not None and (await self.repository.chats.state(key)).active_character == removed:
                await self.repository.chats.set_active_character(key, None)
        state = replace(state, active_character=None)
        successor = self.active_pack(state)
        log.info("%s: active character %r is gone; %r takes over", incoming.key, removed, successor.id)
        notice = f"The character '{removed}' was removed from the bot; {successor.name} takes over here."
        return state, [Reply(notice, quote=False)]

    async def chat_state(self, incoming: Incoming) -> ChatState:
        """The chat's state, with what it has not chosen itself taken from its parent chat."""
        state = await self.repository.chats.state(incoming.key)
        if (parent_key := incoming.parent_key) is None:
            return state
        parent = await self.repository.chats.state(parent_key)
        return replace(
            state,
            active_character=state.active_character or parent.active_character,
            images_enabled=parent.images_enabled if state.images_enabled is None else state.images_enabled,
        )

    def active_pack(self, state: ChatState) -> CharacterPack:
        """The chat's character: the one chosen with ``/switch``, else ``[characters] default``, else the
        first one not disabled in the chat."""
        for pack_id in (state.active_character, self.config.characters.default):
            if pack_id and pack_id not in state.disabled and (pack := self.packs.get(pack_id)) is not None:
                return pack
        return next((pack for pack in self.packs if pack.id not in state.disabled), next(iter(self.packs)))

    async def _speaker(self, incoming: Incoming) -> tuple[str, str]:
        """The sender's display name now (made safe for the script) and their stable name here, which
        is never a character's name or alias (a member called "Orla Finch" is "Orla Finch#1234")."""
        display = speaker_name(incoming.sender.name, f"user{incoming.sender.user_id[-4:]}")
        stable = await self.repository.chats.participant_name(
            incoming.key, incoming.sender.user_id, display, reserved=self.packs.spoken_names()
        )
        return display, stable

    async def _keep_room_talk(self, incoming: Incoming, text: str, state: ChatState) -> int | None:
        """Remember group talk addressed to no character, for every character's context."""
        if incoming.chat_type != "group":
            return None
        memory = self.config.memory
        display, _name = await self._speaker(incoming)
        return await self.repository.messages.add_room(
            incoming.key,
            user_id=incoming.sender.user_id,
            user_name=display,
            text=text,
            platform_message_id=incoming.message_id,
            enabled=memory.room_context if state.room_context is None else state.room_context,
            keep=memory.room_keep,
        )

    async def _answer(
        self, incoming: Incoming, state: ChatState, pack: CharacterPack, message_id: int, *, model: str | None
    ) -> Reply | None:
        """``pack``'s answer to the stored message ``message_id``, with what it witnessed before that
        (``None`` when the message was forgotten meanwhile); ``model`` answers instead of ``[llm] model``."""
        key = incoming.key
        window = max(self.config.prompt.history_turns, 1)
        stored = await self.repository.messages.recent(
            key, pack.id, limit=window + 1, before_id=message_id + 1
        )
        if not stored or stored[-1].id != message_id:
            return None
        *earlier, message = stored
        history = [self._turn(turn, pack) for turn in earlier[-window:]]
        images_on = self.config.images.enabled if state.images_enabled is None else state.images_enabled
        with_screenshot = images_on and bool(pack.screenshots) and self.cooldown.ready(key)
        summary, _covered = await self.repository.summaries.get(key, pack.id)
        recalled = await self._recall(key, pack, earlier[-window:], message.text)
        result = await self.responder.respond(
            pack,
            history,
            self._turn(message, pack),
            with_screenshot=with_screenshot,
            summary=summary,
            recalled=recalled,
            model=self.responder.model.variant(model) if model else None,
        )
        await self.governor.record(incoming, result.completions, result.prompt.system_text)
        reply = Reply(result.text, character=pack.id, in_history=not result.failed)
        if result.screenshot is not None:
            image = await screenshot_image(
                result.screenshot.shot, self.config.images, self.config.image_cache_dir
            )
            if image is not None:
                reply.images.append(image)
                self.cooldown.used(key)
        return reply

    async def greet(self, key: ChatKey, now: datetime) -> None:
        """Post the chat's daily greeting, written by its active character for ``now``; raises
        :class:`JobError` when the model or the platform fails (the greeting is then retried)."""
        async with self.locks.hold(key):
            state = await self.repository.chats.state(key)
            pack = self.active_pack(state)
            window = max(self.config.prompt.history_turns, 1)
            stored = await self.repository.messages.recent(key, pack.id, limit=window)
            summary, _covered = await self.repository.summaries.get(key, pack.id)
            result = await self.responder.respond(
                pack, [self._turn(turn, pack) for turn in stored], greeting_cue(pack, now), summary=summary
            )
            if result.failed:
                raise JobError(f"{key}: {pack.name} has no greeting: the model did not answer")
            greeting = Reply(result.text, quote=False, character=pack.id, in_history=True)
            await self.ledger.record(key, [greeting], names={pack.id: pack.name})
        # NOTE: posted outside the chat's lock: a paced or reconnecting account must not hold the chat.
        if not await self.outbox.announce(key, greeting):
            await self.ledger.settle([greeting], "failed", "the platform is not connected")
            raise JobError(f"{key}: the greeting could not be posted (is the platform connected?)")

    async def _recall(
        self, key: ChatKey, pack: CharacterPack, window: list[StoredMessage], text: str
    ) -> list[str]:
        """Older messages (before the history window) that ``text`` is about, as prompt lines."""
        memory = self.config.memory
        if not memory.recall_k or not window or len(window) < max(self.config.prompt.history_turns, 1):
            return []
        older = await self.repository.messages.recent(
            key, pack.id, limit=memory.recall_scan, before_id=window[0].id
        )
        found = await self.responder.recall.search(older, text, memory.recall_k, context=window[-1].text)
        return [self._turn(message, pack).render() for message in found]

    @staticmethod
    def _turn(message: StoredMessage, pack: CharacterPack) -> Turn:
        if message.role == "character":
            return Turn(pack.name, message.text, from_character=True)
        return Turn(message.speaker, message.text)
