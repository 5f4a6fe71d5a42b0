"""The repository: every database read and write the core makes, one short transaction each.

The core never builds queries itself; it calls these methods with a
:class:`~bot.messages.ChatKey`, so no query can forget the ``(platform, chat_id)`` filter.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, cast

from sqlalchemy import delete, func, or_, select, update

from storage.deliveries import DeliveryStore, said
from storage.models import (
    CatalogChange,
    Chat,
    ChatAdmin,
    DisabledCharacter,
    Greeting,
    Message,
    MessageClaim,
    Participant,
    Summary,
    Usage,
    utcnow,
)

if TYPE_CHECKING:
    from bot.messages import ChatKey
    from storage.db import Database

MessageRole = Literal["user", "character"]
CatalogAction = Literal["serve", "remove"]
CLAIM_WINDOW = timedelta(minutes=10)
"""How long a claimed platform message id stays taken (redeliveries come within seconds)."""
CLAIM_BUSY = timedelta(minutes=3)
"""How long another process may still be answering a message it claimed, unless told (the router
allows twice a reply's deadline); after that an unanswered claim may be retried."""


class Claim(StrEnum):
    """What :meth:`Repository.claim_message` found."""

    NEW = "new"
    """Nobody had it: answer it."""
    RETRY = "retry"
    """An earlier attempt stopped without answering it: answer it, reusing what that attempt stored."""
    TAKEN = "taken"
    """Another process is on it, or it was answered (or seen before by this one)."""


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
    """The user's stable name in the chat (see :meth:`Repository.participant_name`)."""


@dataclass(slots=True, frozen=True)
class SavedGreeting:
    """A chat's daily greeting as stored: ``at`` is ``HH:MM`` in ``timezone`` (empty: the machine's)."""

    platform: str
    chat_id: str
    at: str
    timezone: str
    last_sent: str | None
    """The local date (ISO) of the last greeting sent."""


@dataclass(slots=True, frozen=True)
class UsageRow:
    """Tokens spent, summed over whatever the query grouped by."""

    platform: str
    chat_id: str
    user_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    replies: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, frozen=True)
class SummaryDue:
    """A chat where a character has more unsummarised messages than its history window holds."""

    platform: str
    chat_id: str
    character_id: str
    pending: int


class Repository:
    """Reads and writes chat state and history."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sessions = database.sessions
        self.deliveries = DeliveryStore(database)
        """What the bot said in each chat and whether it was posted."""

    def chat_lock(self, key: ChatKey) -> AbstractAsyncContextManager[None]:
        """Hold ``key``'s lock across every bot process on this database (see :meth:`Database.chat_lock`)."""
        return self._database.chat_lock(f"chat:{key.platform}:{key.chat_id}")

    async def claim_message(
        self,
        key: ChatKey,
        message_id: str,
        *,
        by: str,
        window: timedelta = CLAIM_WINDOW,
        busy: timedelta = CLAIM_BUSY,
    ) -> Claim:
        """Take on the platform message ``message_id``: :attr:`Claim.NEW` for the first to see it.

        One insert-or-update, so of two processes (or two deliveries) exactly one wins. A claim older
        than ``window`` is stale and may be taken again: platforms reuse ids after a while. A claim
        whose message has no reply posted or pending is :attr:`Claim.RETRY` for another process once
        its claimer cannot be working on it any more: the claimer stopped (it was the only process
        on this database) or ``busy`` has passed.
        """
        now = utcnow()
        insert = self._database.insert(MessageClaim)
        statement = insert.values(
            platform=key.platform, chat_id=key.chat_id, message_id=message_id, claimed_by=by, claimed_at=now
        ).on_conflict_do_update(
            index_elements=["platform", "chat_id", "message_id"],
            set_={"claimed_by": by, "claimed_at": now},
            where=MessageClaim.claimed_at < now - window,
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
            if getattr(result, "rowcount", 0):
                return Claim.NEW
            claimer, claimed_at = (
                await session.execute(
                    select(MessageClaim.claimed_by, MessageClaim.claimed_at).where(
                        MessageClaim.platform == key.platform,
                        MessageClaim.chat_id == key.chat_id,
                        MessageClaim.message_id == message_id,
                    )
                )
            ).one()
        if claimer == by or not (self._database.alone or _aware(claimed_at) < now - busy):
            return Claim.TAKEN
        if await self.deliveries.answered(key.platform, key.chat_id, message_id):
            return Claim.TAKEN
        async with self._sessions.begin() as session:
            retaken = await session.execute(
                update(MessageClaim)
                .where(
                    MessageClaim.platform == key.platform,
                    MessageClaim.chat_id == key.chat_id,
                    MessageClaim.message_id == message_id,
                    MessageClaim.claimed_by == claimer,
                )
                .values(claimed_by=by, claimed_at=now)
            )
        return Claim.RETRY if getattr(retaken, "rowcount", 0) else Claim.TAKEN

    async def stored_from(self, key: ChatKey, platform_message_id: str) -> dict[str | None, int]:
        """The messages stored from one platform message (by an earlier attempt to answer it), by the
        character they were addressed to (``None``: room talk)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Message.character_id, Message.id).where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.platform_message_id == platform_message_id,
                    Message.role == "user",
                )
            )
            return {character_id: message_id for character_id, message_id in rows.all()}  # noqa: C416

    async def add_usage(
        self, key: ChatKey, user_id: str, day: str, model: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Add one reply's tokens to the member's count for ``day`` (one upsert, safe across processes)."""
        insert = self._database.insert(Usage)
        statement = insert.values(
            platform=key.platform,
            chat_id=key.chat_id,
            user_id=user_id,
            day=day,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            replies=1,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "chat_id", "user_id", "day", "model"],
            set_={
                "prompt_tokens": Usage.prompt_tokens + statement.excluded.prompt_tokens,
                "completion_tokens": Usage.completion_tokens + statement.excluded.completion_tokens,
                "replies": Usage.replies + 1,
            },
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def tokens_on(self, key: ChatKey, user_id: str, day: str) -> tuple[int, int]:
        """``(the chat's tokens, the member's tokens)`` on ``day``."""
        spent = func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Usage.user_id, spent)
                    .where(Usage.platform == key.platform, Usage.chat_id == key.chat_id, Usage.day == day)
                    .group_by(Usage.user_id)
                )
            ).all()
        return sum(int(row[1]) for row in rows), sum(int(row[1]) for row in rows if row[0] == user_id)

    async def usage(self, since: str, until: str, key: ChatKey | None = None) -> list[UsageRow]:
        """Tokens per chat, member and model from day ``since`` to ``until`` (inclusive); one chat's
        when ``key`` is given, else every chat's."""
        query = select(
            Usage.platform,
            Usage.chat_id,
            Usage.user_id,
            Usage.model,
            func.sum(Usage.prompt_tokens),
            func.sum(Usage.completion_tokens),
            func.sum(Usage.replies),
        ).where(Usage.day >= since, Usage.day <= until)
        if key is not None:
            query = query.where(Usage.platform == key.platform, Usage.chat_id == key.chat_id)
        query = query.group_by(Usage.platform, Usage.chat_id, Usage.user_id, Usage.model)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            UsageRow(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6])) for row in rows
        ]

    async def forget_claims(self, before: datetime) -> int:
        """Delete claims older than ``before`` (a platform never redelivers a message that late)."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(MessageClaim).where(MessageClaim.claimed_at < before))
            return int(getattr(result, "rowcount", 0))

    async def record_catalog_change(self, pack_id: str, action: CatalogAction, *, origin: str) -> int:
        async with self._sessions.begin() as session:
            change = CatalogChange(pack_id=pack_id, action=action, origin=origin)
            session.add(change)
            await session.flush()
            return change.id

    async def catalog_changes(self, after: int) -> list[tuple[int, str, CatalogAction, str]]:
        """``(id, pack_id, action, origin)`` of the changes after ``after``, oldest first."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(CatalogChange.id, CatalogChange.pack_id, CatalogChange.action, CatalogChange.origin)
                .where(CatalogChange.id > after)
                .order_by(CatalogChange.id)
            )
            return [(row.id, row.pack_id, cast(CatalogAction, row.action), row.origin) for row in rows]

    async def last_catalog_change(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.coalesce(func.max(CatalogChange.id), 0))) or 0)

    async def chat_state(self, key: ChatKey) -> ChatState:
        async with self._sessions() as session:
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

    async def set_character_disabled(self, key: ChatKey, character_id: str, disabled: bool) -> bool:
        """Hide or show a character in one chat; ``False`` when it already was so."""
        async with self._sessions.begin() as session:
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

    async def grant_admin(self, key: ChatKey, user_id: str, *, granted_by: str) -> bool:
        """Make ``user_id`` a bot admin of the chat; ``False`` when they already were."""
        async with self._sessions.begin() as session:
            if await session.get(ChatAdmin, (key.platform, key.chat_id, user_id)) is not None:
                return False
            session.add(
                ChatAdmin(platform=key.platform, chat_id=key.chat_id, user_id=user_id, granted_by=granted_by)
            )
            return True

    async def revoke_admin(self, key: ChatKey, user_id: str) -> bool:
        async with self._sessions.begin() as session:
            row = await session.get(ChatAdmin, (key.platform, key.chat_id, user_id))
            if row is None:
                return False
            await session.delete(row)
            return True

    async def chat_admins(self, key: ChatKey) -> list[str]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ChatAdmin.user_id)
                .where(ChatAdmin.platform == key.platform, ChatAdmin.chat_id == key.chat_id)
                .order_by(ChatAdmin.created_at)
            )
            return list(rows)

    async def is_chat_admin(self, key: ChatKey, user_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(ChatAdmin, (key.platform, key.chat_id, user_id)) is not None

    async def _update_chat(self, key: ChatKey, **values: object) -> None:
        async with self._sessions.begin() as session:
            chat = await session.get(Chat, (key.platform, key.chat_id))
            if chat is None:
                chat = Chat(platform=key.platform, chat_id=key.chat_id, active_character=None, memory_floor=0)
                session.add(chat)
            for name, value in values.items():
                setattr(chat, name, value)

    async def set_active_character(self, key: ChatKey, character_id: str | None) -> None:
        await self._update_chat(key, active_character=character_id)

    async def set_images_enabled(self, key: ChatKey, enabled: bool) -> None:
        await self._update_chat(key, images_enabled=enabled)

    async def set_manners(self, key: ChatKey, **manners: float | None) -> None:
        """Set ``chattiness`` and/or ``debounce_s`` for one chat (``None``: back to the config's)."""
        unknown = set(manners) - {"chattiness", "debounce_s"}
        if unknown:
            raise TypeError(f"not a chat manner: {', '.join(sorted(unknown))}")
        await self._update_chat(key, **manners)

    async def add_message(
        self,
        key: ChatKey,
        *,
        role: MessageRole,
        character_id: str | None,
        user_id: str,
        user_name: str,
        text: str,
        platform_message_id: str | None = None,
    ) -> int:
        """Store one message and return its id; committed before this returns."""
        async with self._sessions.begin() as session:
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

    async def recent_messages(
        self, key: ChatKey, character_id: str, *, limit: int, before_id: int | None = None
    ) -> list[StoredMessage]:
        """What ``character_id`` witnessed in the chat since the last ``/reset``, oldest first: the
        messages to and from it, and the room talk addressed to no one (never another character's
        exchanges). User messages carry the sender's stable name as ``speaker``."""
        async with self._sessions() as session:
            floor = await session.scalar(
                select(Chat.memory_floor).where(Chat.platform == key.platform, Chat.chat_id == key.chat_id)
            )
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
                    or_(Message.character_id == character_id, Message.character_id.is_(None)),
                    Message.id > (floor or 0),
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

    async def participant_name(
        self, key: ChatKey, user_id: str, display_name: str, *, reserved: Collection[str] = ()
    ) -> str:
        """The name characters know ``user_id`` by in this chat: fixed the first time they speak.

        A later rename on the platform changes nothing here, so nobody can take another's name; a name
        already held by someone else in the chat, or ``reserved`` (casefolded: the characters' names),
        gets ``#`` and the end of the user id.
        """
        async with self._sessions.begin() as session:
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

    async def participants(self, key: ChatKey) -> dict[str, str]:
        """Every known member of the chat: user id → the name characters know them by."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Participant.user_id, Participant.name).where(
                    Participant.platform == key.platform, Participant.chat_id == key.chat_id
                )
            )
            return {row.user_id: row.name for row in rows}

    async def add_room_message(
        self,
        key: ChatKey,
        *,
        user_id: str,
        user_name: str,
        text: str,
        platform_message_id: str | None,
        default_on: bool,
        keep: int,
    ) -> int | None:
        """Keep talk addressed to no character, unless the chat turned that off; only the latest
        ``keep`` such messages of the chat are kept. Returns the message's id, ``None`` when not kept."""
        async with self._sessions.begin() as session:
            chat = await session.get(Chat, (key.platform, key.chat_id))
            enabled = chat.room_context if chat is not None and chat.room_context is not None else default_on
            if not enabled:
                return None
            message = Message(
                platform=key.platform,
                chat_id=key.chat_id,
                character_id=None,
                role="user",
                user_id=user_id,
                user_name=user_name,
                text=text,
                platform_message_id=platform_message_id,
            )
            session.add(message)
            await session.flush()
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
            return message.id

    async def set_room_context(self, key: ChatKey, enabled: bool) -> None:
        await self._update_chat(key, room_context=enabled)

    async def character_memory(self, key: ChatKey, character_id: str) -> tuple[int, datetime | None]:
        """How many messages ``character_id`` exchanged in the chat (since ``/reset``), and since when."""
        async with self._sessions() as session:
            floor = await session.scalar(
                select(Chat.memory_floor).where(Chat.platform == key.platform, Chat.chat_id == key.chat_id)
            )
            count, first = (
                await session.execute(
                    select(func.count(Message.id), func.min(Message.created_at)).where(
                        Message.platform == key.platform,
                        Message.chat_id == key.chat_id,
                        Message.character_id == character_id,
                        Message.id > (floor or 0),
                    )
                )
            ).one()
        return count or 0, first

    async def forget_character(self, key: ChatKey, character_id: str) -> int:
        """Delete everything said to and by ``character_id`` in the chat; returns how many messages."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(Message).where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.character_id == character_id,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def forget_user(self, platform: str, user_id: str) -> int:
        """Delete every message ``user_id`` wrote on ``platform``, in every chat, and their names."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(Message).where(
                    Message.platform == platform, Message.user_id == user_id, Message.role == "user"
                )
            )
            await session.execute(
                delete(Participant).where(Participant.platform == platform, Participant.user_id == user_id)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def reset_memory(self, key: ChatKey) -> int:
        """Forget the chat's conversation so far; returns how many messages were forgotten.

        Messages stay in the database (nothing said is lost); they are no longer recalled.
        """
        async with self._sessions.begin() as session:
            newest = await session.scalar(
                select(func.max(Message.id)).where(
                    Message.platform == key.platform, Message.chat_id == key.chat_id
                )
            )
            chat = await session.get(Chat, (key.platform, key.chat_id))
            floor = chat.memory_floor if chat else 0
            forgotten = await session.scalar(
                select(func.count(Message.id)).where(
                    Message.platform == key.platform, Message.chat_id == key.chat_id, Message.id > floor
                )
            )
            if chat is None:
                chat = Chat(platform=key.platform, chat_id=key.chat_id, active_character=None, memory_floor=0)
                session.add(chat)
            chat.memory_floor = newest or 0
            return forgotten or 0

    async def count_messages(self, key: ChatKey) -> int:
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.count(Message.id)).where(
                    Message.platform == key.platform, Message.chat_id == key.chat_id
                )
            )
        return total or 0

    # ------------------------------------------------------------------ summaries

    async def summary(self, key: ChatKey, character_id: str) -> tuple[str, int]:
        """The character's summary of the chat and the last message id it covers (``("", 0)`` when none)."""
        async with self._sessions() as session:
            found = await session.get(Summary, (key.platform, key.chat_id, character_id))
        return (found.text, found.upto_id) if found is not None else ("", 0)

    async def save_summary(self, key: ChatKey, character_id: str, text: str, upto_id: int) -> None:
        async with self._sessions.begin() as session:
            found = await session.get(Summary, (key.platform, key.chat_id, character_id))
            if found is None:
                session.add(
                    Summary(
                        platform=key.platform,
                        chat_id=key.chat_id,
                        character_id=character_id,
                        text=text,
                        upto_id=upto_id,
                    )
                )
            else:
                found.text, found.upto_id = text, upto_id

    async def summaries_due(self, keep: int, batch: int) -> list[SummaryDue]:
        """Chats and characters with at least ``keep + batch`` messages past their summary: the newest
        ``keep`` stay verbatim in prompts, the older ones are due to be summarised."""
        covered = func.coalesce(Summary.upto_id, 0)
        floor = func.coalesce(Chat.memory_floor, 0)
        query = (
            select(Message.platform, Message.chat_id, Message.character_id, func.count(Message.id))
            .outerjoin(
                Summary,
                (Summary.platform == Message.platform)
                & (Summary.chat_id == Message.chat_id)
                & (Summary.character_id == Message.character_id),
            )
            .outerjoin(Chat, (Chat.platform == Message.platform) & (Chat.chat_id == Message.chat_id))
            .where(Message.character_id.is_not(None), Message.id > covered, Message.id > floor)
            .group_by(Message.platform, Message.chat_id, Message.character_id)
            .having(func.count(Message.id) >= keep + batch)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [SummaryDue(platform, chat, str(who), count) for platform, chat, who, count in rows]

    async def messages_to_summarise(self, key: ChatKey, character_id: str, keep: int) -> list[StoredMessage]:
        """The character's messages past its summary except the newest ``keep``, oldest first."""
        _text, upto = await self.summary(key, character_id)
        recent = await self.recent_messages(key, character_id, limit=5_000)
        mine = [message for message in recent if message.character_id == character_id and message.id > upto]
        return mine[: max(len(mine) - keep, 0)]

    async def delete_summarised_before(self, cutoff: datetime) -> int:
        """Delete raw messages older than ``cutoff`` whose gist a summary already keeps (and old room
        talk); a message no summary covers yet is kept, whatever its age. Returns how many went."""
        covered = (
            select(Summary.upto_id)
            .where(
                Summary.platform == Message.platform,
                Summary.chat_id == Message.chat_id,
                Summary.character_id == Message.character_id,
            )
            .scalar_subquery()
        )
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(Message)
                .where(
                    Message.created_at < cutoff, or_(Message.character_id.is_(None), Message.id <= covered)
                )
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def save_greeting(self, key: ChatKey, *, at: str, timezone: str, created_by: str) -> None:
        """Turn on (or move) the chat's daily greeting; the day it last greeted is kept."""
        async with self._sessions.begin() as session:
            row = await session.get(Greeting, (key.platform, key.chat_id))
            if row is None:
                row = Greeting(platform=key.platform, chat_id=key.chat_id, last_sent=None)
                session.add(row)
            row.at, row.timezone, row.created_by = at, timezone, created_by

    async def delete_greeting(self, key: ChatKey) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(Greeting).where(Greeting.platform == key.platform, Greeting.chat_id == key.chat_id)
            )
            return bool(getattr(result, "rowcount", 0))

    async def greeting(self, key: ChatKey) -> SavedGreeting | None:
        async with self._sessions() as session:
            row = await session.get(Greeting, (key.platform, key.chat_id))
            return None if row is None else _saved_greeting(row)

    async def greetings(self) -> list[SavedGreeting]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Greeting).order_by(Greeting.platform, Greeting.chat_id))
            return [_saved_greeting(row) for row in rows]

    async def claim_greeting(self, key: ChatKey, day: str) -> bool:
        """Mark the chat greeted on ``day``; ``False`` when it already was, or has no greeting.

        One conditional update, so two processes firing the same greeting cannot both win.
        """
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Greeting)
                .where(
                    Greeting.platform == key.platform,
                    Greeting.chat_id == key.chat_id,
                    or_(Greeting.last_sent.is_(None), Greeting.last_sent != day),
                )
                .values(last_sent=day)
            )
            return bool(getattr(result, "rowcount", 0))

    async def release_greeting(self, key: ChatKey, day: str, before: str | None) -> None:
        """Undo :meth:`claim_greeting` after a greeting that could not be sent, so a retry may send it."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Greeting)
                .where(
                    Greeting.platform == key.platform,
                    Greeting.chat_id == key.chat_id,
                    Greeting.last_sent == day,
                )
                .values(last_sent=before)
            )


def _saved_greeting(row: Greeting) -> SavedGreeting:
    return SavedGreeting(row.platform, row.chat_id, row.at, row.timezone, row.last_sent)
