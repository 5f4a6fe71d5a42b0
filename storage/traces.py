"""Traces: why each character reply came out as it did, kept a while for the web console's inspector.

A trace is stored as JSON (:class:`bot.traces.ReplyTrace` writes and reads it) under the id of the
reply's delivery, in the record stage's unit of work; a daily job deletes those older than
``[memory] trace_days``. Listing joins the deliveries, so a list shows what was said and whether it
was posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Row, Select, delete, insert, select

from storage.models import Delivery, Trace, table_of, utcnow
from storage.store import ChatRef, Store, rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.deliveries import DeliveryState


@dataclass(slots=True, frozen=True)
class NewTrace:
    """One reply's trace to store: ``trace`` is its JSON."""

    delivery_id: int
    character_id: str | None
    trace: str


@dataclass(slots=True, frozen=True)
class TraceEntry:
    """A stored trace with the reply it explains: the delivery's text and state."""

    delivery_id: int
    platform: str
    chat_id: str
    character_id: str | None
    created_at: datetime
    text: str
    state: DeliveryState
    trace: str


_INSERT = insert(table_of(Trace))
"""Built once: every reply runs it."""


def _entries() -> Select[int, str, str, str | None, datetime, str, str, str]:
    """A trace's columns with its delivery's text and state."""
    return select(
        Trace.delivery_id,
        Trace.platform,
        Trace.chat_id,
        Trace.character_id,
        Trace.created_at,
        Delivery.text,
        Delivery.state,
        Trace.trace,
    ).join(Delivery, Delivery.id == Trace.delivery_id)


class Traces(Store):
    """The ``traces`` table."""

    async def add(
        self, key: ChatRef, traces: Sequence[NewTrace], *, session: AsyncSession | None = None
    ) -> None:
        """Store the traces of replies said in ``key`` (one statement however many there are)."""
        if not traces:
            return
        now = utcnow()
        rows = [
            {
                "delivery_id": trace.delivery_id,
                "platform": key.platform,
                "chat_id": key.chat_id,
                "character_id": trace.character_id,
                "created_at": now,
                "trace": trace.trace,
            }
            for trace in traces
        ]
        async with self._session(session) as session:
            await session.execute(_INSERT, rows)

    async def get(self, delivery_id: int, key: ChatRef | None = None) -> str | None:
        """The JSON trace of the reply ``delivery_id`` (only if it was said in ``key``, when given)."""
        query = select(Trace.trace).where(Trace.delivery_id == delivery_id)
        if key is not None:
            query = query.where(Trace.platform == key.platform, Trace.chat_id == key.chat_id)
        async with self._session(None) as session:
            return cast("str | None", await session.scalar(query))

    async def entry(self, delivery_id: int, key: ChatRef | None = None) -> TraceEntry | None:
        """:meth:`get` with what the reply said and its state."""
        query = _entries().where(Trace.delivery_id == delivery_id)
        if key is not None:
            query = query.where(Trace.platform == key.platform, Trace.chat_id == key.chat_id)
        async with self._session(None) as session:
            row = (await session.execute(query)).first()
        return None if row is None else _entry(row)

    async def recent(self, key: ChatRef, limit: int = 50, before_id: int | None = None) -> list[TraceEntry]:
        """The newest ``limit`` traces of ``key``, newest first; with ``before_id``, those older than
        that reply (the next page of a list)."""
        query = _entries().where(Trace.platform == key.platform, Trace.chat_id == key.chat_id)
        if before_id is not None:
            query = query.where(Trace.delivery_id < before_id)
        query = query.order_by(Trace.delivery_id.desc()).limit(limit)
        async with self._session(None) as session:
            rows = (await session.execute(query)).all()
        return [_entry(row) for row in rows]

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete the traces stored before ``cutoff``; how many were deleted."""
        async with self._session(None) as session:
            return rowcount(await session.execute(delete(Trace).where(Trace.created_at < cutoff)))


def _entry(row: Row[int, str, str, str | None, datetime, str, str, str]) -> TraceEntry:
    delivery_id, platform, chat_id, character_id, created_at, text, state, trace = row
    return TraceEntry(
        delivery_id, platform, chat_id, character_id, created_at, text, cast("DeliveryState", state), trace
    )
