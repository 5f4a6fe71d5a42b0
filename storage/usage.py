"""Usage: the tokens each member's messages cost in each chat, per day and model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storage.models import Usage, table_of
from storage.store import ChatRef, Store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database


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
    voice_chars: int = 0
    voice_ms: int = 0
    day: str | None = None
    """The day (``YYYY-MM-DD``) when the query grouped by day, else ``None``."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Spending(Store):
    """The ``usage`` table."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        table = table_of(Usage)
        insert = database.insert(table).values(replies=1)
        self._add = insert.on_conflict_do_update(
            index_elements=["platform", "chat_id", "user_id", "day", "model"],
            set_={
                "prompt_tokens": table.c.prompt_tokens + insert.excluded.prompt_tokens,
                "completion_tokens": table.c.completion_tokens + insert.excluded.completion_tokens,
                "replies": table.c.replies + 1,
            },
        )
        """One reply's tokens added (built once: every reply runs it)."""
        speech = database.insert(table).values(replies=0, prompt_tokens=0, completion_tokens=0)
        self._add_speech = speech.on_conflict_do_update(
            index_elements=["platform", "chat_id", "user_id", "day", "model"],
            set_={
                "voice_chars": table.c.voice_chars + speech.excluded.voice_chars,
                "voice_ms": table.c.voice_ms + speech.excluded.voice_ms,
            },
        )

    async def add(
        self,
        key: ChatRef,
        user_id: str,
        day: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Add one reply's tokens to the member's count for ``day`` (one upsert, safe across processes)."""
        row = {
            "platform": key.platform,
            "chat_id": key.chat_id,
            "user_id": user_id,
            "day": day,
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
        async with self._session(session) as session:
            await session.execute(self._add, row)

    async def add_speech(
        self, key: ChatRef, user_id: str, day: str, model: str, characters: int, seconds: float
    ) -> None:
        """Add one voice's characters and seconds to the member's count for ``day``, under the speech
        engine's ``model`` (``speech:…``)."""
        row = {
            "platform": key.platform,
            "chat_id": key.chat_id,
            "user_id": user_id,
            "day": day,
            "model": model,
            "voice_chars": characters,
            "voice_ms": round(seconds * 1000),
        }
        async with self._session(None) as session:
            await session.execute(self._add_speech, row)

    async def tokens_on(
        self, key: ChatRef, user_id: str, day: str, *, session: AsyncSession | None = None
    ) -> tuple[int, int]:
        """``(the chat's tokens, the member's tokens)`` on ``day``."""
        spent = func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0)
        async with self._session(session) as session:
            rows = (
                await session.execute(
                    select(Usage.user_id, spent)
                    .where(Usage.platform == key.platform, Usage.chat_id == key.chat_id, Usage.day == day)
                    .group_by(Usage.user_id)
                )
            ).all()
        return sum(int(row[1]) for row in rows), sum(int(row[1]) for row in rows if row[0] == user_id)

    async def rows(
        self, since: str, until: str, key: ChatRef | None = None, *, by_day: bool = False
    ) -> list[UsageRow]:
        """Tokens per chat, member and model from day ``since`` to ``until`` (inclusive); one chat's
        when ``key`` is given, else every chat's; ``by_day`` keeps the days apart (each row's ``day``)."""
        groups = [Usage.platform, Usage.chat_id, Usage.user_id, Usage.model]
        if by_day:
            groups.append(Usage.day)
        query = select(
            *groups,
            func.sum(Usage.prompt_tokens),
            func.sum(Usage.completion_tokens),
            func.sum(Usage.replies),
            func.sum(Usage.voice_chars),
            func.sum(Usage.voice_ms),
        ).where(Usage.day >= since, Usage.day <= until)
        if key is not None:
            query = query.where(Usage.platform == key.platform, Usage.chat_id == key.chat_id)
        query = query.group_by(*groups)
        async with self._session(None) as session:
            rows = (await session.execute(query)).all()
        sums = len(groups)
        return [
            UsageRow(
                row[0],
                row[1],
                row[2],
                row[3],
                int(row[sums]),
                int(row[sums + 1]),
                int(row[sums + 2]),
                int(row[sums + 3]),
                int(row[sums + 4]),
                day=row[4] if by_day else None,
            )
            for row in rows
        ]
