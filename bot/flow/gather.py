"""Gather: a message's claim, its chat's state, the message stored, and the context of every
character that answers it, in one unit of work (one database session).

The message is committed when the unit ends, before any model is asked, so a crash loses nothing
said. Rarely changing state (the chat's settings, its members' names) comes from the stores' caches.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.engine.packs import CharacterPack
from bot.engine.registry import PackRegistry
from bot.flow.classify import Talk, speaker_name
from bot.messages import ChatKey, Incoming, Reply
from storage.claims import Claim

if TYPE_CHECKING:
    from datetime import timedelta

    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import BotConfig
    from bot.governor import Decision
    from storage import ChatState, Repository, StoredMessage

    Decide = Callable[["Said", AsyncSession], Awaitable[Decision | None]]
    """Rules on the first character a message owes an answer (the router's call to the governor)."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Context:
    """What one character needs to answer one stored message."""

    pack: CharacterPack
    message: StoredMessage
    history: list[StoredMessage]
    """What it witnessed just before, oldest first (at most ``[prompt] history_turns``)."""
    older: list[StoredMessage]
    """What it witnessed before that, when the history is full: the candidates of recall."""
    summary: str


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
    contexts: dict[str, Context] = field(default_factory=dict)
    """The context of each character in ``owed``, read in the same unit of work."""
    unprompted: bool = False
    """The active character joins room talk nobody addressed to it (``[groups] chattiness``)."""
    decision: Decision | None = None
    """The governor's word on the first character owed an answer, taken in the same unit of work."""


class Gatherer:
    """Reads and stores what a message needs, one unit of work per message."""

    def __init__(
        self,
        config: BotConfig,
        packs: PackRegistry,
        repository: Repository,
        *,
        process: str,
        busy: timedelta,
        chance: random.Random,
    ) -> None:
        self.config = config
        self.packs = packs
        self.repository = repository
        self.process = process
        """This runtime's name in message claims (``host:pid:random``)."""
        self.busy = busy
        """How long another process may still be answering a message it claimed."""
        self.chance = chance
        """Rolls the dice of ``[groups] chattiness``."""

    # ------------------------------------------------------------------ claim and state

    async def claim(self, incoming: Incoming, session: AsyncSession) -> dict[str | None, int] | None:
        """Take on the message; ``None`` when another process has it (or it was answered), else what an
        earlier attempt at it stored (by character; empty for a new message)."""
        if incoming.message_id is None:
            return {}
        claim = await self.repository.claims.claim(
            incoming.key, incoming.message_id, by=self.process, busy=self.busy, session=session
        )
        if claim is Claim.TAKEN:
            log.debug(
                "message %s in %s is another process's (or answered)", incoming.message_id, incoming.key
            )
            return None
        if claim is Claim.RETRY:
            log.info("answering %s in %s: it was left unanswered before", incoming.message_id, incoming.key)
            return await self.repository.messages.stored_from(
                incoming.key, incoming.message_id, session=session
            )
        return {}

    async def state(
        self, incoming: Incoming, session: AsyncSession, *, told: bool = True
    ) -> tuple[ChatState, list[Reply]]:
        """The chat's state, with what it has not chosen itself taken from its parent chat, and a notice
        when its active character has been removed since.

        The notice comes with the chat's next message that is answered (``told``) rather than at
        removal time, so a chat on a platform that is not connected then (or a pack deleted while the
        bot was down) is told too; room talk, which nobody answers, leaves it for later.
        """
        chats = self.repository.chats
        state = await chats.state(incoming.key, session=session)
        if (parent_key := incoming.parent_key) is not None:
            parent = await chats.state(parent_key, session=session)
            state = replace(
                state,
                active_character=state.active_character or parent.active_character,
                images_enabled=parent.images_enabled
                if state.images_enabled is None
                else state.images_enabled,
            )
        removed = state.active_character
        if removed is None or removed in self.packs or not told:
            return state, []
        for key in (incoming.key, parent_key):
            if key is not None and (await chats.state(key, session=session)).active_character == removed:
                await chats.set_active_character(key, None, session=session)
        state = replace(state, active_character=None)
        successor = self.active_pack(state)
        log.info("%s: active character %r is gone; %r takes over", incoming.key, removed, successor.id)
        notice = f"The character '{removed}' was removed from the bot; {successor.name} takes over here."
        return state, [Reply(notice, quote=False)]

    def active_pack(self, state: ChatState) -> CharacterPack:
        """The chat's character: the one chosen with ``/switch``, else ``[characters] default``, else the
        first one not disabled in the chat."""
        for pack_id in (state.active_character, self.config.characters.default):
            if pack_id and pack_id not in state.disabled and (pack := self.packs.get(pack_id)) is not None:
                return pack
        return next((pack for pack in self.packs if pack.id not in state.disabled), next(iter(self.packs)))

    async def speaker(self, incoming: Incoming, session: AsyncSession | None = None) -> tuple[str, str]:
        """The sender's display name now (made safe for the script) and their stable name here, which
        is never a character's name or alias (a member called "Orla Finch" is "Orla Finch#1234")."""
        display = speaker_name(incoming.sender.name, f"user{incoming.sender.user_id[-4:]}")
        stable = await self.repository.chats.participant_name(
            incoming.key,
            incoming.sender.user_id,
            display,
            reserved=self.packs.spoken_names(),
            session=session,
        )
        return display, stable

    # ------------------------------------------------------------------ talk

    async def talk(self, incoming: Incoming, talk: Talk, *, decide: Decide | None = None) -> Said | None:
        """Claim and store a message that is not a command and note which characters owe it an answer;
        unless the chat waits for the rest of a burst, also read their contexts and let ``decide`` (the
        governor) rule on the first. ``None`` when the message is not this process's."""
        async with self.repository.unit() as session:
            earlier = await self.claim(incoming, session)
            if earlier is None:
                return None
            said = await self._store(incoming, talk, earlier, session)
            if said.debounce_s == 0:
                await self.join_room_talk(incoming, said, session)
                said.contexts = await self.contexts(incoming.key, said.owed, said.state, session)
                if decide is not None and said.contexts:
                    said.decision = await decide(said, session)
            return said

    async def _store(
        self, incoming: Incoming, talk: Talk, earlier: Mapping[str | None, int], session: AsyncSession
    ) -> Said:
        key = incoming.key
        state, notices = await self.state(incoming, session, told=bool(talk.calls) or incoming.to_me)
        manners = self.config.groups
        said = Said(
            state,
            notices,
            chattiness=manners.chattiness if state.chattiness is None else state.chattiness,
            debounce_s=manners.debounce_s if state.debounce_s is None else state.debounce_s,
        )
        calls = [pack for pack in talk.calls if pack.id not in state.disabled]
        display, _stable = await self.speaker(incoming, session)
        if not calls and not incoming.to_me:
            said.room_text = talk.whole
            if (stored := earlier.get(None)) is not None:
                said.room_message = stored
            elif incoming.chat_type == "group":
                memory = self.config.memory
                said.room_message = await self.repository.messages.add_room(
                    key,
                    user_id=incoming.sender.user_id,
                    user_name=display,
                    text=talk.whole,
                    platform_message_id=incoming.message_id,
                    enabled=memory.room_context if state.room_context is None else state.room_context,
                    keep=memory.room_keep,
                    session=session,
                )
            return said
        addressed = self.packs.get(incoming.character) if incoming.character else None
        if addressed is not None and addressed.id in state.disabled:
            addressed = None
        for pack in calls or [addressed or self.active_pack(state)]:
            if (stored := earlier.get(pack.id)) is None:
                stored = await self.repository.messages.add(
                    key,
                    role="user",
                    character_id=pack.id,
                    user_id=incoming.sender.user_id,
                    user_name=display,
                    text=talk.text if calls else talk.whole,
                    platform_message_id=incoming.message_id,
                    session=session,
                )
            said.owed[pack.id] = stored
        return said

    async def join_room_talk(self, incoming: Incoming, said: Said, session: AsyncSession) -> None:
        """With nobody owed an answer, maybe the active character joins the talk unprompted (the
        message is then stored for it, when room talk is not kept in this chat)."""
        if said.owed or incoming.chat_type != "group" or said.chattiness <= 0:
            return
        if self.chance.random() >= said.chattiness:
            return
        pack = self.active_pack(said.state)
        if said.room_message is None:
            display, _stable = await self.speaker(incoming, session)
            said.room_message = await self.repository.messages.add(
                incoming.key,
                role="user",
                character_id=pack.id,
                user_id=incoming.sender.user_id,
                user_name=display,
                text=said.room_text,
                platform_message_id=incoming.message_id,
                session=session,
            )
        said.unprompted = True
        said.owed[pack.id] = said.room_message

    async def contexts(
        self, key: ChatKey, owed: Mapping[str, int], state: ChatState, session: AsyncSession | None = None
    ) -> dict[str, Context]:
        """The context of each character in ``owed`` (a message forgotten meanwhile has none)."""
        if not owed:
            return {}
        if session is None:
            async with self.repository.unit() as own:
                return await self.contexts(key, owed, state, own)
        window = max(self.config.prompt.history_turns, 1)
        recall = self.config.memory.recall_scan if self.config.memory.recall_k else 0
        found: dict[str, Context] = {}
        for pack_id, message_id in owed.items():
            if (pack := self.packs.get(pack_id)) is None:
                continue
            stored = await self.repository.messages.recent(
                key,
                pack.id,
                limit=window + 1 + recall,
                before_id=message_id + 1,
                floor=state.memory_floor,
                session=session,
            )
            if not stored or stored[-1].id != message_id:
                continue
            *before, message = stored
            history, older = before[-window:], before[:-window]
            summary, _covered = await self.repository.summaries.get(key, pack.id, session=session)
            found[pack.id] = Context(pack, message, history, older if len(history) >= window else [], summary)
        return found
