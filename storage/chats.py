"""Chats: each chat's settings, the characters it hid, its bot admins, and the names of its members."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storage.models import Chat, ChatAdmin, DisabledCharacter, Message, Participant
from storage.store import ChatRef, Store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


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


MANNERS = frozenset({"chattiness", "debounce_s"})


class Chats(Store):
    """The ``chats`` table with the chat's disabled characters, bot admins and participants."""

    async def state(self, key: ChatRef, *, session: AsyncSession | None = None) -> ChatState:
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
        )

    async def _update(self, key: ChatRef, **values: object) -> None:
        async with self._session(None) as session:
            chat = await session.get(Chat, (key.platform, key.chat_id))
            if chat is None:
                chat = Chat(platform=key.platform, chat_id=key.chat_id, active_character=None, memory_floor=0)
                session.add(chat)
            for name, value in values.items():
                setattr(chat, name, value)

    async def set_active_character(self, key: ChatRef, character_id: str | None) -> None:
        await self._update(key, active_character=character_id)

    async def set_images_enabled(self, key: ChatRef, enabled: bool) -> None:
        await self._update(key, images_enabled=enabled)

    async def set_room_context(self, key: ChatRef, enabled: bool) -> None:
        await self._update(key, room_context=enabled)

    async def set_manners(self, key: ChatRef, **manners: float | None) -> None:
        """Set ``chattiness`` and/or ``debounce_s`` for one chat (``None``: back to the config's)."""
        if unknown := set(manners) - MANNERS:
            raise TypeError(f"not a chat manner: {', '.join(sorted(unknown))}")
        await self._update(key, **manners)

    async def set_character_disabled(self, key: ChatRef, character_id: str, disabled: bool) -> bool:
        """Hide or show a character in one chat; ``False`` when it already was so."""
        async with self._session(None) as session:
            row = await session.get(DisabledCharacter, (key.platform, key.chat_id, character_id))
            if disabled and row is None:
                session.add(
                    DisabledCharacter(platform=key.platform, chat_id=key.chat_id, character_id=character_id)
                )
                return True
            if not disabled and row is not None:
                await session.delete(row)
                return True
            return False

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
            return forgotten or 0

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
        async with self._session(session) as session:
            known = await session.get(Participant, (key.platform, key.chat_id, user_id))
            if known is not None:
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
            return name

    async def participants(self, key: ChatRef) -> dict[str, str]:
        """Every known member of the chat: user id → the name characters know them by."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(Participant.user_id, Participant.name).where(
                    Participant.platform == key.platform, Participant.chat_id == key.chat_id
                )
            )
            return {row.user_id: row.name for row in rows}
