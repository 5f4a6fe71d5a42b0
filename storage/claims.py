"""Claims: which bot process took on which platform message, so that each is answered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select, update

from storage.deliveries import Deliveries
from storage.models import MessageClaim, table_of, utcnow
from storage.store import ChatRef, Store, rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database

CLAIM_WINDOW = timedelta(minutes=10)
"""How long a claimed platform message id stays taken (redeliveries come within seconds)."""
CLAIM_BUSY = timedelta(minutes=3)
"""How long another process may still be answering a message it claimed, unless told (the router
allows twice a reply's deadline); after that an unanswered claim may be retried."""


class Claim(StrEnum):
    """What :meth:`Claims.claim` found."""

    NEW = "new"
    """Nobody had it: answer it."""
    RETRY = "retry"
    """An earlier attempt stopped without answering it: answer it, reusing what that attempt stored."""
    TAKEN = "taken"
    """Another process is on it, or it was answered (or seen before by this one)."""


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Claims(Store):
    """The ``message_claims`` table."""

    def __init__(self, database: Database, deliveries: Deliveries) -> None:
        super().__init__(database)
        self._deliveries = deliveries
        table = table_of(MessageClaim)
        insert = database.insert(table)
        self._claim = insert.on_conflict_do_update(
            index_elements=["platform", "chat_id", "message_id"],
            set_={"claimed_by": insert.excluded.claimed_by, "claimed_at": insert.excluded.claimed_at},
            where=table.c.claimed_at < bindparam("stale_before"),
        )
        """Insert the claim, or take a stale one over (built once: every message runs it)."""

    async def claim(
        self,
        key: ChatRef,
        message_id: str,
        *,
        by: str,
        window: timedelta = CLAIM_WINDOW,
        busy: timedelta = CLAIM_BUSY,
        session: AsyncSession | None = None,
    ) -> Claim:
        """Take on the platform message ``message_id``: :attr:`Claim.NEW` for the first to see it.

        One insert-or-update, so of two processes (or two deliveries) exactly one wins. A claim older
        than ``window`` is stale and may be taken again: platforms reuse ids after a while. A claim
        whose message has no reply posted or pending is :attr:`Claim.RETRY` for another process once
        its claimer cannot be working on it any more: the claimer stopped (it was the only process
        on this database) or ``busy`` has passed.
        """
        now = utcnow()
        claim = {
            "platform": key.platform,
            "chat_id": key.chat_id,
            "message_id": message_id,
            "claimed_by": by,
            "claimed_at": now,
            "stale_before": now - window,
        }
        async with self._session(session) as session:
            if rowcount(await session.execute(self._claim, claim)):
                return Claim.NEW
            here = (
                MessageClaim.platform == key.platform,
                MessageClaim.chat_id == key.chat_id,
                MessageClaim.message_id == message_id,
            )
            claimer, claimed_at = (
                await session.execute(select(MessageClaim.claimed_by, MessageClaim.claimed_at).where(*here))
            ).one()
            if claimer == by or not (self._database.alone or _aware(claimed_at) < now - busy):
                return Claim.TAKEN
            if await self._deliveries.answered(key.platform, key.chat_id, message_id, session=session):
                return Claim.TAKEN
            retaken = await session.execute(
                update(MessageClaim)
                .where(*here, MessageClaim.claimed_by == claimer)
                .values(claimed_by=by, claimed_at=now)
            )
            return Claim.RETRY if rowcount(retaken) else Claim.TAKEN

    async def forget(self, before: datetime) -> int:
        """Delete claims older than ``before`` (a platform never redelivers a message that late)."""
        async with self._session(None) as session:
            return rowcount(
                await session.execute(delete(MessageClaim).where(MessageClaim.claimed_at < before))
            )
