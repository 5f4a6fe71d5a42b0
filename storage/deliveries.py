"""Deliveries: what the bot says in a chat, stored before it is posted and marked once it was.

A reply is written in the same transaction as the character's line it carries, as ``pending``; the
send path marks it ``posted`` (or ``failed``, ``dropped``). Replies still pending when a process stops
are taken over by the process their account reconnects to and posted once, or marked ``expired``
when they are too old to still make sense. A character line whose delivery was never posted is
not part of the character's history (see :data:`UNSAID`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Delivery, Message, table_of, utcnow
from storage.store import Store, rowcount

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

DeliveryState = Literal["pending", "posted", "failed", "dropped", "expired"]
UNSAID: tuple[DeliveryState, ...] = ("failed", "dropped", "expired")
"""States of a delivery whose text nobody saw."""
ANSWERED: tuple[DeliveryState, ...] = ("pending", "posted")
"""States of a delivery that answers its message (posted, or about to be)."""


def said(message_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """A filter for messages: true unless the message is a character line that was never posted."""
    return ~exists().where(Delivery.message_id == message_id, _state_is(UNSAID))


def _state_is(states: Sequence[DeliveryState]) -> ColumnElement[bool]:
    """``state IN (...)`` written as plain comparisons: an ``IN`` list is re-rendered for every
    statement, while this keeps the statement in SQLAlchemy's compiled cache (it runs per message)."""
    return or_(*(Delivery.state == state for state in states))


@dataclass(slots=True)
class Outgoing:
    """One reply to record: ``line_of`` names the character whose history it joins (``None`` for
    command output and anything else that is not a character's line)."""

    text: str
    character_id: str | None = None
    line_of: str | None = None
    images: list[str] = field(default_factory=list)
    quote: bool = False
    voice: str | None = None
    voice_only: bool = False


@dataclass(slots=True, frozen=True)
class Unsent:
    """A pending delivery a restarted process took over, to post now."""

    id: int
    platform: str
    chat_id: str
    account: str
    answers: str | None
    character_id: str | None
    text: str
    images: list[str]
    quote: bool
    created_at: datetime
    voice: str | None = None
    voice_only: bool = False


_INSERT = insert(table_of(Delivery)).returning(table_of(Delivery).c.id)
_INSERT_LINE = insert(table_of(Message)).returning(table_of(Message).c.id)
_SETTLE = (
    update(table_of(Delivery))
    .where(
        table_of(Delivery).c.id.in_(bindparam("ids", expanding=True)),
        or_(table_of(Delivery).c.state == "pending", table_of(Delivery).c.state == "expired"),
    )
    .values(state=bindparam("new_state"))
)
"""Built once: every reply runs them."""


class Deliveries(Store):
    """The ``deliveries`` table (and the character lines recorded with them)."""

    async def record(
        self,
        platform: str,
        chat_id: str,
        replies: Sequence[Outgoing],
        *,
        account: str,
        answers: str | None,
        process: str,
        session: AsyncSession | None = None,
    ) -> list[int]:
        """Store ``replies`` as pending deliveries (and the character lines among them as messages),
        in one transaction; their delivery ids, in order."""
        now = utcnow()
        ids: list[int] = []
        async with self._session(session) as session:
            for reply in replies:
                line_id: int | None = None
                if reply.line_of is not None:
                    line = {
                        "platform": platform,
                        "chat_id": chat_id,
                        "character_id": reply.character_id,
                        "role": "character",
                        "user_id": "",
                        "user_name": reply.line_of,
                        "text": reply.text,
                        "platform_message_id": None,
                        "created_at": now,
                    }
                    line_id = int((await session.execute(_INSERT_LINE, line)).scalar_one())
                row = {
                    "platform": platform,
                    "chat_id": chat_id,
                    "account": account,
                    "message_id": line_id,
                    "answers": answers,
                    "character_id": reply.character_id,
                    "text": reply.text,
                    "images": json.dumps(reply.images, ensure_ascii=False),
                    "quote": reply.quote,
                    "voice": reply.voice,
                    "voice_only": reply.voice_only,
                    "state": "pending",
                    "process": process,
                    "error": None,
                    "created_at": now,
                    "updated_at": now,
                }
                ids.append(int((await session.execute(_INSERT, row)).scalar_one()))
        return ids

    async def set_voice(self, id: int, voice: str, *, voice_only: bool) -> None:
        """Give the pending delivery ``id`` the voice made for it (``/voice only`` speaks a reply
        recorded as text)."""
        async with self._session(None) as session:
            await session.execute(
                update(Delivery).where(Delivery.id == id).values(voice=voice, voice_only=voice_only)
            )

    async def settle(self, ids: Sequence[int], state: DeliveryState, error: str | None = None) -> int:
        """Mark the deliveries ``ids`` (pending, or expired while waiting) as ``state``."""
        if not ids:
            return 0
        async with self._session(None) as session:
            result = await session.execute(
                _SETTLE, {"ids": list(ids), "new_state": state, "error": error, "updated_at": utcnow()}
            )
            return rowcount(result)

    async def take_unsent(
        self, platform: str, account: str, *, process: str, since: datetime, before: datetime
    ) -> list[Unsent]:
        """The deliveries for ``account`` that another (stopped) process left pending, recorded before
        ``before`` (when the taking process started) and younger than ``since``, now this process's to
        post; older ones are marked expired."""
        left = (
            Delivery.state == "pending",
            Delivery.platform == platform,
            Delivery.account == account,
            Delivery.process != process,
            Delivery.created_at < before,
        )
        async with self._session(None) as session:
            too_old = update(Delivery).where(*left, Delivery.created_at < since)
            await session.execute(too_old.values(state="expired", updated_at=utcnow()))
            taken = await session.execute(
                update(Delivery)
                .where(*left)
                .values(process=process, updated_at=utcnow())
                .returning(
                    Delivery.id,
                    Delivery.chat_id,
                    Delivery.answers,
                    Delivery.character_id,
                    Delivery.text,
                    Delivery.images,
                    Delivery.quote,
                    Delivery.created_at,
                    Delivery.voice,
                    Delivery.voice_only,
                )
            )
            rows = taken.all()
        unsent = [
            Unsent(
                row.id,
                platform,
                row.chat_id,
                account,
                row.answers,
                row.character_id,
                row.text,
                list(json.loads(row.images or "[]")),
                row.quote,
                row.created_at,
                row.voice,
                row.voice_only,
            )
            for row in rows
        ]
        return sorted(unsent, key=lambda one: one.id)

    async def expire(self, before: datetime) -> int:
        """Mark every delivery still pending from before ``before`` as expired (its account never came
        back in time); the number marked."""
        async with self._session(None) as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.state == "pending", Delivery.created_at < before)
                .values(state="expired", updated_at=utcnow())
            )
            return rowcount(result)

    async def answered(
        self, platform: str, chat_id: str, message_id: str, *, session: AsyncSession | None = None
    ) -> bool:
        """Whether a reply to the platform message ``message_id`` was posted or is about to be."""
        async with self._session(session) as session:
            found = await session.scalar(
                select(Delivery.id)
                .where(
                    Delivery.platform == platform,
                    Delivery.chat_id == chat_id,
                    Delivery.answers == message_id,
                    _state_is(ANSWERED),
                )
                .limit(1)
            )
        return found is not None

    async def of_chat(self, platform: str, chat_id: str) -> list[tuple[str, DeliveryState]]:
        """Every delivery of a chat as ``(text, state)``, oldest first (for tests and the console)."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(Delivery.text, Delivery.state)
                .where(Delivery.platform == platform, Delivery.chat_id == chat_id)
                .order_by(Delivery.id)
            )
            return [(text, state) for text, state in rows.all()]  # type: ignore[misc]
