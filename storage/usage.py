"""Usage: the tokens each member's messages cost in each chat, per day and model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storage.models import Usage
from storage.store import ChatRef, Store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


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


class Spending(Store):
    """The ``usage`` table."""

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
        async with self._session(session) as session:
            await session.execute(statement)

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

    async def rows(self, since: str, until: str, key: ChatRef | None = None) -> list[UsageRow]:
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
        async with self._session(None) as session:
            rows = (await session.execute(query)).all()
        return [
            UsageRow(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6])) for row in rows
        ]
