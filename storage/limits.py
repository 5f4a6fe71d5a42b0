"""What the governor reads to decide on a message, in one statement, and the notices it said once.

Rate windows are counted from what the database holds already (the character lines in ``messages``;
a member's messages there that a character line in ``deliveries`` answers), so all the bot processes
on one database share one limit. The
lines the governor says once ("slow down", "that's all for today") are kept in ``notices``, so they
are said once across restarts and processes too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ScalarSelect, delete, func, select

from storage.models import Delivery, Message, Notice, Usage, utcnow
from storage.store import ChatRef, Store

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession

NoticeKind = Literal["slow_down", "spent"]
CHAT = ""
"""The ``user_id`` of a notice said to the whole chat."""


@dataclass(slots=True, frozen=True)
class Pace:
    """Where a chat and one of its members stand, read for one decision."""

    chat_replies: int
    """Character lines said in the chat within the window."""
    chat_full_at: datetime | None
    """When the ``chat_limit``-th newest of them was said (``None``: there are fewer)."""
    member_replies: int
    """The member's messages in the chat within the window that a character has answered."""
    member_full_at: datetime | None
    """When the ``member_limit``-th newest of them was sent (``None``: there are fewer)."""
    chat_tokens: int = 0
    member_tokens: int = 0
    """Tokens spent on ``day`` by the chat and by the member."""
    told: dict[tuple[str, NoticeKind], str] = field(default_factory=dict)
    """Notices standing, ``(CHAT or the member's id, kind)`` → the day they were said."""
    last_told: str | None = None
    """The text of the last notice said in the chat (the next one picks another line)."""


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC time (SQLite hands timestamps back without their zone)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Limits(Store):
    """The governor's reads (:meth:`pace`) and the ``notices`` table."""

    async def pace(
        self,
        key: ChatRef,
        user_id: str,
        *,
        since: datetime,
        chat_limit: int,
        member_limit: int,
        day: str,
        session: AsyncSession | None = None,
    ) -> Pace:
        """The chat's and the member's :class:`Pace` in the window after ``since`` (and on ``day``),
        in one statement over indexed rows of this chat only."""
        chat = (Message.platform == key.platform, Message.chat_id == key.chat_id)
        replies = (*chat, Message.role == "character", Message.created_at > since)
        answered = (
            select(Delivery.id)
            .where(
                Delivery.platform == Message.platform,
                Delivery.chat_id == Message.chat_id,
                Delivery.answers == Message.platform_message_id,
                Delivery.message_id.is_not(None),
            )
            .exists()
        )
        asked = (
            *chat,
            Message.role == "user",
            Message.user_id == user_id,
            Message.character_id.is_not(None),
            Message.created_at > since,
            answered,
        )
        spent = func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0)
        usage = (Usage.platform == key.platform, Usage.chat_id == key.chat_id, Usage.day == day)
        notices = (Notice.platform == key.platform, Notice.chat_id == key.chat_id)
        scopes: list[tuple[str, NoticeKind]] = [
            (scope, kind) for scope in (CHAT, user_id) for kind in ("slow_down", "spent")
        ]
        statement = select(
            _count(replies),
            _nth(replies, chat_limit - 1),
            _count(asked),
            _nth(asked, member_limit - 1),
            select(spent).where(*usage).scalar_subquery(),
            select(spent).where(*usage, Usage.user_id == user_id).scalar_subquery(),
            select(Notice.text).where(*notices).order_by(Notice.told_at.desc()).limit(1).scalar_subquery(),
            *(
                _told(notices, scope, kind)
                for scope, kind in scopes
            ),
        )
        async with self._session(session) as session:
            row = (await session.execute(statement)).one()
        replied, full_at, answered_member, member_full_at, chat_tokens, member_tokens, last = row[:7]
        return Pace(
            int(replied),
            _utc(full_at),
            int(answered_member),
            _utc(member_full_at),
            int(chat_tokens),
            int(member_tokens),
            {scope: day for scope, day in zip(scopes, row[7:], strict=True) if day is not None},
            last,
        )

    async def tell(
        self,
        key: ChatRef,
        user_ids: Iterable[str],
        kind: NoticeKind,
        *,
        day: str,
        text: str,
        session: AsyncSession | None = None,
    ) -> None:
        """Note that ``text`` was said as a ``kind`` notice to each of ``user_ids`` (``CHAT``: the chat)."""
        rows = [
            {
                "platform": key.platform,
                "chat_id": key.chat_id,
                "user_id": user_id,
                "kind": kind,
                "day": day,
                "text": text,
                "told_at": utcnow(),
            }
            for user_id in user_ids
        ]
        if not rows:
            return
        insert = self._database.insert(Notice)
        statement = insert.values(rows).on_conflict_do_update(
            index_elements=["platform", "chat_id", "user_id", "kind"],
            set_={column: insert.excluded[column] for column in ("day", "text", "told_at")},
        )
        async with self._session(session) as session:
            await session.execute(statement)

    async def withdraw(
        self, key: ChatRef, user_ids: Iterable[str], kind: NoticeKind, *, session: AsyncSession | None = None
    ) -> None:
        """The ``kind`` notices of ``user_ids`` stand no more (the next time, they are said again)."""
        async with self._session(session) as session:
            await session.execute(
                delete(Notice).where(
                    Notice.platform == key.platform,
                    Notice.chat_id == key.chat_id,
                    Notice.user_id.in_(list(user_ids)),
                    Notice.kind == kind,
                )
            )

    async def forget_user(self, platform: str, user_id: str) -> None:
        """Delete the notices said to ``user_id`` on ``platform``, in every chat."""
        async with self._session(None) as session:
            mine = (Notice.platform == platform, Notice.user_id == user_id)
            await session.execute(delete(Notice).where(*mine))


def _count(where: tuple[ColumnElement[bool], ...]) -> ScalarSelect[int]:
    return select(func.count()).select_from(Message).where(*where).scalar_subquery()


def _nth(where: tuple[ColumnElement[bool], ...], newer: int) -> ScalarSelect[datetime]:
    """The time of the message with ``newer`` newer ones matching ``where``."""
    return (
        select(Message.created_at)
        .where(*where)
        .order_by(Message.created_at.desc())
        .offset(max(newer, 0))
        .limit(1)
        .scalar_subquery()
    )


def _told(notices: tuple[ColumnElement[bool], ...], scope: str, kind: NoticeKind) -> ScalarSelect[str]:
    """The day the ``kind`` notice of ``scope`` was said (``NULL``: it does not stand)."""
    return select(Notice.day).where(*notices, Notice.user_id == scope, Notice.kind == kind).scalar_subquery()
