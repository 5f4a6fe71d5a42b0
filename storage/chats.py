"""Chats: each chat's settings, the characters it hid, its bot admins, and the names of its members.

A chat's state and its members' names are read on every message and change rarely, so each process
keeps them in bounded caches. A change made here drops the cached entry at once; one made by another
process on the same PostgreSQL database reaches this one through the change feed
(:class:`storage.models.CatalogChange` rows of action ``chat``, which the core's catalog sync follows
within ``[storage] sync_interval_s``), and every entry expires after ``CACHE_TTL_S`` whatever happens.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, func, select, tuple_, union

from storage.cache import TTLCache
from storage.models import CatalogChange, Chat, ChatAdmin, DisabledCharacter, Message, Participant
from storage.store import ChatRef, Store, StoredChatKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database

CACHE_TTL_S = 300.0
CACHE_SIZE = 20_000
CHAT_CHANGED = "chat"
"""The action of a change-feed row saying a chat's state changed (``pack_id`` holds its key)."""


@dataclass(slots=True, frozen=True)
class ChatState:
    """What the bot knows about a chat besides its messages."""

    active_character: str | None
    memory_floor: int
    images_enabled: bool | None = None
    disabled: frozenset[str] = frozenset()
    """Characters hidden in this chat with ``/character disable``."""
    room_context: bool | None = None
    """``/room on|off``; ``None`` follows ``[memory] room_context``."""
    chattiness: float | None = None
    """``/chatty``; ``None`` follows ``[groups] chattiness``."""
    debounce_s: float | None = None
    """``/debounce``; ``None`` follows ``[groups] debounce_s``."""
    voice_mode: str | None = None
    """``/voice on|off|only``; ``None`` follows ``[voice] mode``."""


MANNERS = frozenset({"chattiness", "debounce_s"})


@dataclass(slots=True, frozen=True)
class KnownChat:
    """A chat the bot knows (it has a row in ``chats``, or messages), as the web console lists it."""

    platform: str
    chat_id: str
    state: ChatState
    messages: int
    """Every message stored in the chat, before its last ``/reset`` too."""
    last_active: datetime | None
    """When its last message was stored (UTC); ``None`` when it has none."""
    training: bool = False
    """Whether it turned ``/training`` on (a chat without a row of settings never did)."""


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` with its time zone (SQLite hands back UTC times without one)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def feed_key(key: ChatRef) -> str:
    """How a chat is named in the change feed."""
    return f"{key.platform}:{key.chat_id}"


class Chats(Store):
    """The ``chats`` table with the chat's disabled characters, bot admins and participants."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._states: TTLCache[str, ChatState] = TTLCache(CACHE_SIZE, CACHE_TTL_S)
        self._names: TTLCache[tuple[str, str], str] = TTLCache(CACHE_SIZE, CACHE_TTL_S)

    def forget_cached(self, feed: str) -> None:
        """Drop the cached state of the chat the change feed names (another process changed it)."""
        self._states.pop(feed)

    def _changed(self, key: ChatRef, session: AsyncSession) -> None:
        """Drop the chat's cached state here, and tell the other processes (PostgreSQL)."""
        self._states.pop(feed_key(key))
        if not self._database.alone:
            session.add(CatalogChange(pack_id=feed_key(key), action=CHAT_CHANGED, origin=""))

    async def state(self, key: ChatRef, *, session: AsyncSession | None = None) -> ChatState:
        """The chat's state, from the cache when this process has it."""
        if (cached := self._states.get(feed_key(key))) is not None:
            return cached
        state = await self._read_state(key, session)
        self._states.put(feed_key(key), state)
        return state

    async def _read_state(self, key: ChatRef, session: AsyncSession | None) -> ChatState:
        async with self._session(session) as session:
            chat = await session.get(Chat, (key.platform, key.chat_id))
            disabled = frozenset(
                await session.scalars(
                    select(DisabledCharacter.character_id).where(
                        DisabledCharacter.platform == key.platform, DisabledCharacter.chat_id == key.chat_id
                    )
                )
            )
        if chat is None:
            return ChatState(None, 0, disabled=disabled)
        return ChatState(
            chat.active_character,
            chat.memory_floor,
            chat.images_enabled,
            disabled,
            chat.room_context,
            chat.chattiness,
            chat.debounce_s,
            chat.voice_mode,
        )

    async def _update(
        self, key: ChatRef, values: dict[str, object], session: AsyncSession | None = None
    ) -> None:
        async with self._session(session) as session:
            chat = await session.get(Chat, (key.platform, key.chat_id))
            if chat is None:
                chat = Chat(platform=key.platform, chat_id=key.chat_id, active_character=None, memory_floor=0)
                session.add(chat)
            for name, value in values.items():
                setattr(chat, name, value)
            self._changed(key, session)

    async def set_active_character(
        self, key: ChatRef, character_id: str | None, *, session: AsyncSession | None = None
    ) -> None:
        await self._update(key, {"active_character": character_id}, session)

    async def set_images_enabled(self, key: ChatRef, enabled: bool | None) -> None:
        """``/images on|off``; ``None`` follows ``[images] enabled`` again."""
        await self._update(key, {"images_enabled": enabled})

    async def set_voice_mode(self, key: ChatRef, mode: str | None) -> None:
        await self._update(key, {"voice_mode": mode})

    async def set_room_context(self, key: ChatRef, enabled: bool) -> None:
        await self._update(key, {"room_context": enabled})

    # ------------------------------------------------------------------ training-data consent

    async def set_training(self, key: ChatRef, enabled: bool) -> None:
        """``/training on|off``: whether the chat's exchanges may be exported as training data.

        Told through the change feed like every other setting, though nothing caches it: it is read
        when data is exported, never per message (so it is not part of :class:`ChatState`).
        """
        await self._update(key, {"training": enabled})

    async def training(self, key: ChatRef) -> bool:
        """Whether the chat turned ``/training`` on (``False`` for a chat the bot does not know)."""
        async with self._session(None) as session:
            enabled = await session.scalar(
                select(Chat.training).where(Chat.platform == key.platform, Chat.chat_id == key.chat_id)
            )
        return bool(enabled)

    async def training_chats(self) -> list[ChatRef]:
        """Every chat that turned ``/training`` on, by platform, then chat id: the only chats a
        training-data export may read."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(Chat.platform, Chat.chat_id)
                .where(Chat.training.is_(True))
                .order_by(Chat.platform, Chat.chat_id)
            )
            return [StoredChatKey(platform, chat_id) for platform, chat_id in rows.all()]

    async def set_manners(self, key: ChatRef, **manners: float | None) -> None:
        """Set ``chattiness`` and/or ``debounce_s`` for one chat (``None``: back to the config's)."""
        if unknown := set(manners) - MANNERS:
            raise TypeError(f"not a chat manner: {', '.join(sorted(unknown))}")
        await self._update(key, dict(manners))

    async def set_character_disabled(self, key: ChatRef, character_id: str, disabled: bool) -> bool:
        """Hide or show a character in one chat; ``False`` when it already was so."""
        async with self._session(None) as session:
            row = await session.get(DisabledCharacter, (key.platform, key.chat_id, character_id))
            if disabled and row is None:
                session.add(
                    DisabledCharacter(platform=key.platform, chat_id=key.chat_id, character_id=character_id)
                )
            elif not disabled and row is not None:
                await session.delete(row)
            else:
                return False
            self._changed(key, session)
            return True

    async def reset_memory(self, key: ChatRef) -> int:
        """Forget the chat's conversation so far; returns how many messages were forgotten.

        Messages stay in the database (nothing said is lost); they are no longer recalled.
        """
        in_chat = (Message.platform == key.platform, Message.chat_id == key.chat_id)
        async with self._session(None) as session:
            newest = await session.scalar(select(func.max(Message.id)).where(*in_chat))
            chat = await session.get(Chat, (key.platform, key.chat_id))
            floor = chat.memory_floor if chat else 0
            forgotten = await session.scalar(
                select(func.count(Message.id)).where(*in_chat, Message.id > floor)
            )
            if chat is None:
                chat = Chat(platform=key.platform, chat_id=key.chat_id, active_character=None, memory_floor=0)
                session.add(chat)
            chat.memory_floor = newest or 0
            self._changed(key, session)
            return forgotten or 0

    async def known(
        self, *, limit: int, offset: int = 0, key: ChatRef | None = None
    ) -> tuple[list[KnownChat], int]:
        """One page of the chats the bot knows, the one with the newest message first (those without
        any last), and how many there are in all (``key``: that chat alone, when known).

        A chat is known by its row in ``chats`` or by its messages (a chat that never changed a setting
        may have no row). One statement reads the page with its states, message counts and last
        activity, a second the characters the page's chats disabled.
        """
        in_chat: tuple[Any, ...] = ()
        if key is not None:
            in_chat = (Chat.platform == key.platform, Chat.chat_id == key.chat_id)
        said_in = () if key is None else (Message.platform == key.platform, Message.chat_id == key.chat_id)
        stats = (
            select(
                Message.platform,
                Message.chat_id,
                func.count(Message.id).label("messages"),
                func.max(Message.created_at).label("last_at"),
            )
            .where(*said_in)
            .group_by(Message.platform, Message.chat_id)
            .cte("stats")
        )
        keys = union(
            select(Chat.platform, Chat.chat_id).where(*in_chat), select(stats.c.platform, stats.c.chat_id)
        ).cte("keys")
        query = (
            select(
                keys.c.platform,
                keys.c.chat_id,
                Chat.active_character,
                Chat.memory_floor,
                Chat.images_enabled,
                Chat.room_context,
                Chat.chattiness,
                Chat.debounce_s,
                Chat.voice_mode,
                Chat.training,
                func.coalesce(stats.c.messages, 0),
                stats.c.last_at,
                func.count().over(),
            )
            .select_from(keys)
            .outerjoin(Chat, (Chat.platform == keys.c.platform) & (Chat.chat_id == keys.c.chat_id))
            .outerjoin(stats, (stats.c.platform == keys.c.platform) & (stats.c.chat_id == keys.c.chat_id))
            .order_by(
                # NOTE: by the last message; chats with none after them, the last changed first.
                stats.c.last_at.is_(None),
                stats.c.last_at.desc(),
                Chat.updated_at.desc(),
                keys.c.platform,
                keys.c.chat_id,
            )
            .limit(limit)
            .offset(offset)
        )
        async with self._session(None) as session:
            rows = (await session.execute(query)).all()
            if not rows:
                total = 0 if offset == 0 else await session.scalar(select(func.count()).select_from(keys))
                return [], total or 0
            disabled: dict[tuple[str, str], set[str]] = {}
            listed = [(row[0], row[1]) for row in rows]
            hidden = await session.execute(
                select(
                    DisabledCharacter.platform, DisabledCharacter.chat_id, DisabledCharacter.character_id
                ).where(tuple_(DisabledCharacter.platform, DisabledCharacter.chat_id).in_(listed))
            )
            for platform, chat_id, character_id in hidden:
                disabled.setdefault((platform, chat_id), set()).add(character_id)
        return [_known(row, frozenset(disabled.get((row[0], row[1]), ()))) for row in rows], int(rows[0][-1])

    # ------------------------------------------------------------------ bot admins

    async def grant_admin(self, key: ChatRef, user_id: str, *, granted_by: str) -> bool:
        """Make ``user_id`` a bot admin of the chat; ``False`` when they already were."""
        async with self._session(None) as session:
            if await session.get(ChatAdmin, (key.platform, key.chat_id, user_id)) is not None:
                return False
            session.add(
                ChatAdmin(platform=key.platform, chat_id=key.chat_id, user_id=user_id, granted_by=granted_by)
            )
            return True

    async def revoke_admin(self, key: ChatRef, user_id: str) -> bool:
        async with self._session(None) as session:
            row = await session.get(ChatAdmin, (key.platform, key.chat_id, user_id))
            if row is None:
                return False
            await session.delete(row)
            return True

    async def admins(self, key: ChatRef) -> list[str]:
        async with self._session(None) as session:
            rows = await session.scalars(
                select(ChatAdmin.user_id)
                .where(ChatAdmin.platform == key.platform, ChatAdmin.chat_id == key.chat_id)
                .order_by(ChatAdmin.created_at)
            )
            return list(rows)

    async def is_admin(self, key: ChatRef, user_id: str, *, session: AsyncSession | None = None) -> bool:
        async with self._session(session) as session:
            return await session.get(ChatAdmin, (key.platform, key.chat_id, user_id)) is not None

    # ------------------------------------------------------------------ members

    async def participant_name(
        self,
        key: ChatRef,
        user_id: str,
        display_name: str,
        *,
        reserved: Collection[str] = (),
        session: AsyncSession | None = None,
    ) -> str:
        """The name characters know ``user_id`` by in this chat: fixed the first time they speak.

        A later rename on the platform changes nothing here, so nobody can take another's name; a name
        already held by someone else in the chat, or ``reserved`` (casefolded: the characters' names),
        gets ``#`` and the end of the user id.
        """
        cache_key = (feed_key(key), user_id)
        if (cached := self._names.get(cache_key)) is not None:
            return cached
        async with self._session(session) as session:
            known = await session.get(Participant, (key.platform, key.chat_id, user_id))
            if known is not None:
                self._names.put(cache_key, known.name)
                return known.name
            taken = set(
                await session.scalars(
                    select(Participant.name).where(
                        Participant.platform == key.platform, Participant.chat_id == key.chat_id
                    )
                )
            )
            name = display_name[:48]
            if name in taken or name.casefold() in reserved:
                name = f"{display_name[:40]}#{user_id[-6:]}"
            suffix = 2
            while name in taken:
                name = f"{display_name[:40]}#{user_id[-6:]}-{suffix}"
                suffix += 1
            session.add(Participant(platform=key.platform, chat_id=key.chat_id, user_id=user_id, name=name))
            self._names.put(cache_key, name)
            return name

    def forget_names(self) -> None:
        """Drop the cached member names (after members were forgotten)."""
        self._names.clear()

    async def participants(self, key: ChatRef) -> dict[str, str]:
        """Every known member of the chat: user id → the name characters know them by."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(Participant.user_id, Participant.name).where(
                    Participant.platform == key.platform, Participant.chat_id == key.chat_id
                )
            )
            return {row.user_id: row.name for row in rows}


def _known(row: Row[Any], disabled: frozenset[str]) -> KnownChat:
    (
        platform,
        chat_id,
        active,
        floor,
        images,
        room,
        chattiness,
        debounce_s,
        voice,
        training,
        count,
        last,
        _,
    ) = tuple(row)
    state = ChatState(active, floor or 0, images, disabled, room, chattiness, debounce_s, voice)
    return KnownChat(platform, chat_id, state, int(count), _aware(last), bool(training))
