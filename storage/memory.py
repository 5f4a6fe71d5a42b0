"""Summaries: what each character remembers of a chat's older messages, in the model's words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, or_, select

from storage.cache import TTLCache
from storage.deliveries import said
from storage.messages import Messages, StoredMessage, memory_floor
from storage.models import Chat, Message, Summary
from storage.store import ChatRef, Store, rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database


CACHE_TTL_S = 60.0
CACHE_SIZE = 20_000
MAX_TO_SUMMARISE = 5_000
"""The most messages one summary pass reads; a chat further behind catches up over several passes."""


@dataclass(slots=True, frozen=True)
class SummaryDue:
    """A chat where a character has more unsummarised messages than its history window holds."""

    platform: str
    chat_id: str
    character_id: str
    pending: int


class Summaries(Store):
    """The ``summaries`` table, and the clean-up of the raw messages a summary keeps the gist of.

    A summary is read for every reply and rewritten every few minutes at most, so each process keeps
    the ones it read for ``CACHE_TTL_S`` (one saved here replaces its copy at once; one saved by
    another process on the same database shows here within that time: a gist a little older).
    """

    def __init__(self, database: Database, messages: Messages) -> None:
        super().__init__(database)
        self._messages = messages
        self._cache: TTLCache[tuple[str, str, str], tuple[str, int]] = TTLCache(CACHE_SIZE, CACHE_TTL_S)

    async def get(
        self, key: ChatRef, character_id: str, *, session: AsyncSession | None = None
    ) -> tuple[str, int]:
        """The character's summary of the chat and the last message id it covers (``("", 0)`` when none)."""
        cache_key = (key.platform, key.chat_id, character_id)
        if (cached := self._cache.get(cache_key)) is not None:
            return cached
        async with self._session(session) as session:
            found = await session.get(Summary, cache_key)
        summary = (found.text, found.upto_id) if found is not None else ("", 0)
        self._cache.put(cache_key, summary)
        return summary

    async def of_chat(self, key: ChatRef) -> dict[str, tuple[str, int]]:
        """Every character's summary of the chat: character id → (text, last message id it covers)."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(Summary.character_id, Summary.text, Summary.upto_id).where(
                    Summary.platform == key.platform, Summary.chat_id == key.chat_id
                )
            )
            return {character_id: (text, upto_id) for character_id, text, upto_id in rows.all()}

    async def save(self, key: ChatRef, character_id: str, text: str, upto_id: int) -> None:
        self._cache.put((key.platform, key.chat_id, character_id), (text, upto_id))
        async with self._session(None) as session:
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

    async def due(self, keep: int, batch: int) -> list[SummaryDue]:
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
            .where(
                Message.character_id.is_not(None), Message.id > covered, Message.id > floor, said(Message.id)
            )
            .group_by(Message.platform, Message.chat_id, Message.character_id)
            .having(func.count(Message.id) >= keep + batch)
        )
        async with self._session(None) as session:
            rows = (await session.execute(query)).all()
        return [SummaryDue(platform, chat, str(who), count) for platform, chat, who, count in rows]

    async def to_summarise(self, key: ChatRef, character_id: str, keep: int) -> list[StoredMessage]:
        """The character's own messages past its summary except the newest ``keep``, oldest first."""
        async with self._session(None) as session:
            _text, upto = await self.get(key, character_id, session=session)
            floor = await memory_floor(session, key)
            pending = await session.scalar(
                select(func.count(Message.id)).where(
                    Message.platform == key.platform,
                    Message.chat_id == key.chat_id,
                    Message.character_id == character_id,
                    Message.id > max(upto, floor),
                    said(Message.id),
                )
            )
            if not pending or pending <= keep:
                return []
            mine = await self._messages.recent(
                key,
                character_id,
                limit=min(pending, MAX_TO_SUMMARISE + keep),
                floor=max(upto, floor),
                own_only=True,
                session=session,
            )
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
        async with self._session(None) as session:
            result = await session.execute(
                delete(Message)
                .where(
                    Message.created_at < cutoff, or_(Message.character_id.is_(None), Message.id <= covered)
                )
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)
