"""Messages: what was said in each chat, to and by which character, and the room talk around it.

A character's history in a chat is the messages carrying its id plus the room talk addressed to no
one (the witness rule), since the chat's last ``/reset``, without its own lines that were never
posted (:func:`storage.deliveries.said`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Select, bindparam, delete, func, insert, or_, select

from storage.deliveries import said
from storage.models import Chat, Message, Participant, Trace, table_of, utcnow
from storage.store import ChatRef, Store, rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

MessageRole = Literal["user", "character"]


@dataclass(slots=True, frozen=True)
class StoredMessage:
    id: int
    character_id: str | None
    role: MessageRole
    user_id: str
    user_name: str
    """The display name when the message was sent."""
    text: str
    created_at: datetime
    speaker: str = ""
    """The user's stable name in the chat (see :meth:`storage.chats.Chats.participant_name`)."""


async def memory_floor(session: AsyncSession, key: ChatRef) -> int:
    """The id at or below which the chat's messages were forgotten by ``/reset`` (0: none were)."""
    floor = await session.scalar(
        select(Chat.memory_floor).where(Chat.platform == key.platform, Chat.chat_id == key.chat_id)
    )
    return floor or 0


_INSERT = insert(table_of(Message)).returning(table_of(Message).c.id)
"""One message (a Core statement, built once: this runs for every message)."""

_NO_ID_LIMIT = 2**62


def _with_speakers() -> Select[Any]:
    """A chat's stored messages (the columns of :class:`StoredMessage`) with each writer's stable name,
    of the chat bound as ``platform`` and ``chat_id`` and not unsaid: the base of every history read."""
    table, names = table_of(Message).c, table_of(Participant).c
    return (
        select(
            table.id,
            table.character_id,
            table.role,
            table.user_id,
            table.user_name,
            table.text,
            table.created_at,
            names.name,
        )
        .outerjoin(
            table_of(Participant),
            (names.platform == table.platform)
            & (names.chat_id == table.chat_id)
            & (names.user_id == table.user_id),
        )
        .where(
            table.platform == bindparam("platform"),
            table.chat_id == bindparam("chat_id"),
            said(table.id),
        )
    )


def _history(own_only: bool) -> Select[Any]:
    """A character's witnessed messages, newest first; built once per variant, with the chat, the
    character, the floor, the id bound and the limit as parameters."""
    table = table_of(Message).c
    own = table.character_id == bindparam("character_id")
    return (
        _with_speakers()
        .where(
            own if own_only else or_(own, table.character_id.is_(None)),
            table.id > bindparam("floor"),
            table.id < bindparam("before_id"),
        )
        .order_by(table.id.desc())
        .limit(bindparam("limit"))
    )


_OWN = _history(own_only=True)
_WITNESSED = _history(own_only=False)


def _exchanges() -> Select[Any]:
    """Every message to and by one character in a chat since its ``/reset``, oldest first, in one
    statement: the chat's floor is a subquery, not a read of its own."""
    table, chats = table_of(Message).c, table_of(Chat).c
    floor = (
        select(chats.memory_floor)
        .where(chats.platform == bindparam("platform"), chats.chat_id == bindparam("chat_id"))
        .scalar_subquery()
    )
    return (
        _with_speakers()
        .where(table.character_id == bindparam("character_id"), table.id > func.coalesce(floor, 0))
        .order_by(table.id)
    )


_EXCHANGES = _exchanges()


def _stored(row: Any) -> StoredMessage:
    """A row of :func:`_history` or :func:`_exchanges` (user messages speak by their stable name)."""
    message_id, character_id, role, user_id, user_name, text, created_at, name = row
    return StoredMessage(
        message_id,
        character_id,
        "character" if role == "character" else "user",
        user_id,
        user_name,
        text,
        created_at,
        speaker=name or user_name,
    )


class Messages(Store):
    """The ``messages`` table."""

    async def add(
        self,
        key: ChatRef,
        *,
        role: MessageRole,
        character_id: str | None,
        user_id: str,
        user_name: str,
        text: str,
        platform_message_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> int:
        """Store one message and return its id (committed when this returns, unless in ``session``)."""
        row = {
            "platform": key.platform,
            "chat_id": key.chat_id,
            "character_id": character_id,
            "role": role,
            "user_id": user_id,
            "user_name": user_name,
            "text": text,
            "platform_message_id": platform_message_id,
            "created_at": utcnow(),
        }
        async with self._session(session) as session:
            return int((await session.execute(_INSERT, row)).scalar_one())

    async def add_room(
        self,
        key: ChatRef,
        *,
        user_id: str,
        user_name: str,
        text: str,
        platform_message_id: str | None,
        enabled: bool,
        keep: int,
        session: AsyncSession | None = None,
    ) -> int | None:
        """Keep talk addressed to no character when ``enabled`` (the chat's ``/room`` or the config's);
        only the latest ``keep`` such messages of the chat are kept. Returns the message's id, ``None``
        when not kept."""
        if not enabled:
            return None
        async with self._session(session) as session:
            message_id = await self.add(
                key,
                role="user",
                character_id=None,
                user_id=user_id,
                user_name=user_name,
                text=text,
                platform_message_id=platform_message_id,
                session=session,
            )
            room = (
                Message.platform == key.platform,
                Message.chat_id == key.chat_id,
                Message.character_id.is_(None),
            )
            oldest_kept = await session.scalar(
                select(Message.id).where(*room).order_by(Message.id.desc()).offset(keep - 1).limit(1)
            )
            if oldest_kept is not None:
                await session.execute(delete(Message).where(*room, Message.id < oldest_kept))
            return message_id

    async def recent(
        self,
        key: ChatRef,
        character_id: str,
        *,
        limit: int,
        before_id: int | None = None,
        floor: int | None = None,
        own_only: bool = False,
        session: AsyncSession | None = None,
    ) -> list[StoredMessage]:
        """What ``character_id`` witnessed in the chat since the last ``/reset`` (``floor``, read from
        the chat when not given), oldest first: the messages to and from it, and the room talk
        addressed to no one (never another character's exchanges; ``own_only`` leaves out the room
        talk too). User messages carry the sender's stable name as ``speaker``."""
        async with self._session(session) as session:
            if floor is None:
                floor = await memory_floor(session, key)
            result = await session.execute(
                _OWN if own_only else _WITNESSED,
                {
                    "platform": key.platform,
                    "chat_id": key.chat_id,
                    "character_id": character_id,
                    "floor": floor,
                    "before_id": _NO_ID_LIMIT if before_id is None else before_id,
                    "limit": limit,
                },
            )
            rows = result.all()
        # NOTE: plain rows, not ORM objects: recall reads up to [memory] recall_scan of them per reply.
        return [_stored(row) for row in reversed(rows)]

    async def exchanges(self, key: ChatRef, character_id: str) -> list[StoredMessage]:
        """Everything said to and by ``character_id`` in the chat since its last ``/reset``, oldest
        first, without its lines that were never posted: what a training-data export of the chat
        reads (only for chats that turned ``/training`` on, see
        :meth:`storage.chats.Chats.training_chats`). Room talk is left out: it was addressed to no
        character."""
        params = {"platform": key.platform, "chat_id": key.chat_id, "character_id": character_id}
        async with self._session(None) as session:
            rows = (await session.execute(_EXCHANGES, params)).all()
        return [_stored(row) for row in rows]

    async def stored_from(
        self, key: ChatRef, platform_message_id: str, *, session: AsyncSession | None = None
    ) -> dict[str | None, int]:
        """The messages stored from one platform message (by an earlier attempt to answer it), by the
        character they were addressed to (``None``: room talk)."""
        async with self._session(session) as session:
            rows = await session.execute(
                select(Message.character_id, Message.id).where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.platform_message_id == platform_message_id,
                    Message.role == "user",
                )
            )
            return {character_id: message_id for character_id, message_id in rows.all()}  # noqa: C416

    async def count(self, key: ChatRef) -> int:
        async with self._session(None) as session:
            total = await session.scalar(
                select(func.count(Message.id)).where(
                    Message.platform == key.platform, Message.chat_id == key.chat_id
                )
            )
        return total or 0

    async def character_memory(self, key: ChatRef, character_id: str) -> tuple[int, datetime | None]:
        """How many messages ``character_id`` exchanged in the chat (since ``/reset``), and since when."""
        async with self._session(None) as session:
            floor = await memory_floor(session, key)
            count, first = (
                await session.execute(
                    select(func.count(Message.id), func.min(Message.created_at)).where(
                        Message.platform == key.platform,
                        Message.chat_id == key.chat_id,
                        Message.character_id == character_id,
                        Message.id > floor,
                    )
                )
            ).one()
        return count or 0, first

    async def character_memories(self, key: ChatRef) -> dict[str, tuple[int, datetime | None]]:
        """:meth:`character_memory` of every character that exchanged messages in the chat, in one
        statement: character id → (messages since ``/reset``, the first one's time)."""
        async with self._session(None) as session:
            floor = await memory_floor(session, key)
            rows = await session.execute(
                select(Message.character_id, func.count(Message.id), func.min(Message.created_at))
                .where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.character_id.is_not(None),
                    Message.id > floor,
                )
                .group_by(Message.character_id)
            )
            return {str(character_id): (count, first) for character_id, count, first in rows.all()}

    async def forget_character(self, key: ChatRef, character_id: str) -> int:
        """Delete everything said to and by ``character_id`` in the chat; returns how many messages."""
        async with self._session(None) as session:
            result = await session.execute(
                delete(Message).where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.character_id == character_id,
                )
            )
            return rowcount(result)

    async def forget_user(self, platform: str, user_id: str) -> int:
        """Delete every message ``user_id`` wrote on ``platform``, in every chat, and their names, and
        the reply traces of those chats (a trace quotes the messages a reply recalled)."""
        async with self._session(None) as session:
            wrote_in = (
                select(Message.chat_id)
                .where(Message.platform == platform, Message.user_id == user_id, Message.role == "user")
                .distinct()
            )
            await session.execute(
                delete(Trace).where(Trace.platform == platform, Trace.chat_id.in_(wrote_in))
            )
            result = await session.execute(
                delete(Message).where(
                    Message.platform == platform, Message.user_id == user_id, Message.role == "user"
                )
            )
            await session.execute(
                delete(Participant).where(Participant.platform == platform, Participant.user_id == user_id)
            )
            return rowcount(result)
