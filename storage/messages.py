"""Messages: what was said in each chat, to and by which character, and the room talk around it.

A character's history in a chat is the messages carrying its id plus the room talk addressed to no
one (the witness rule), since the chat's last ``/reset``, without its own lines that were never
posted (:func:`storage.deliveries.said`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, func, or_, select

from storage.deliveries import said
from storage.models import Chat, Message, Participant
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
        async with self._session(session) as session:
            message = Message(
                platform=key.platform,
                chat_id=key.chat_id,
                character_id=character_id,
                role=role,
                user_id=user_id,
                user_name=user_name,
                text=text,
                platform_message_id=platform_message_id,
            )
            session.add(message)
            await session.flush()
            return message.id

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
            query = (
                select(
                    Message.id,
                    Message.character_id,
                    Message.role,
                    Message.user_id,
                    Message.user_name,
                    Message.text,
                    Message.created_at,
                    Participant.name,
                )
                .outerjoin(
                    Participant,
                    (Participant.platform == Message.platform)
                    & (Participant.chat_id == Message.chat_id)
                    & (Participant.user_id == Message.user_id),
                )
                .where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.character_id == character_id
                    if own_only
                    else or_(Message.character_id == character_id, Message.character_id.is_(None)),
                    Message.id > floor,
                    said(Message.id),
                )
                .order_by(Message.id.desc())
                .limit(limit)
            )
            if before_id is not None:
                query = query.where(Message.id < before_id)
            rows = (await session.execute(query)).all()
        # NOTE: plain rows, not ORM objects: recall reads up to [memory] recall_scan of them per reply.
        return [
            StoredMessage(
                message_id,
                character_id,
                "character" if role == "character" else "user",
                user_id,
                user_name,
                text,
                created_at,
                speaker=name or user_name,
            )
            for message_id, character_id, role, user_id, user_name, text, created_at, name in reversed(rows)
        ]

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
        """Delete every message ``user_id`` wrote on ``platform``, in every chat, and their names."""
        async with self._session(None) as session:
            result = await session.execute(
                delete(Message).where(
                    Message.platform == platform, Message.user_id == user_id, Message.role == "user"
                )
            )
            await session.execute(
                delete(Participant).where(Participant.platform == platform, Participant.user_id == user_id)
            )
            return rowcount(result)
