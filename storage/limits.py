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
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ScalarSelect, Select, bindparam, delete, func, literal, select

from storage.models import Delivery, Message, Notice, Usage, table_of, utcnow
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
        scopes = [(CHAT if scope == CHAT else user_id, kind) for scope, kind in _SCOPES]
        params = {
            "platform": key.platform,
            "chat_id": key.chat_id,
            "user_id": user_id,
            "since": since,
            "day": day,
            "chat_nth": max(chat_limit - 1, 0),
            "member_nth": max(member_limit - 1, 0),
        }
        async with self._session(session) as session:
            row = (await session.execute(_PACE, params)).one()
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


_SCOPES: tuple[tuple[str, NoticeKind], ...] = (
    (CHAT, "slow_down"),
    (CHAT, "spent"),
    ("member", "slow_down"),
    ("member", "spent"),
)
"""The notices :meth:`Limits.pace` reads: the chat's and the member's, of each kind."""


def _count(where: tuple[ColumnElement[bool], ...]) -> ScalarSelect[int]:
    return select(func.count()).select_from(table_of(Message)).where(*where).scalar_subquery()


def _nth(where: tuple[ColumnElement[bool], ...], newer: str) -> ScalarSelect[datetime]:
    """The time of the message with ``newer`` (a parameter's name) newer ones matching ``where``."""
    created_at = table_of(Message).c.created_at
    return (
        select(created_at)
        .where(*where)
        .order_by(created_at.desc())
        .offset(bindparam(newer))
        .limit(1)
        .scalar_subquery()
    )


def _pace() -> Select[Any]:
    """The statement behind :meth:`Limits.pace`, built once (it runs for every message) with the chat,
    the member, the window's start, the day and the limits as parameters."""
    message, delivery = table_of(Message).c, table_of(Delivery).c
    usage, notice = table_of(Usage).c, table_of(Notice).c
    chat = (message.platform == bindparam("platform"), message.chat_id == bindparam("chat_id"))
    replies = (*chat, message.role == "character", message.created_at > bindparam("since"))
    answered = (
        select(delivery.id)
        .where(
            delivery.platform == message.platform,
            delivery.chat_id == message.chat_id,
            delivery.answers == message.platform_message_id,
            delivery.message_id.is_not(None),
        )
        .exists()
    )
    asked = (
        *chat,
        message.role == "user",
        message.user_id == bindparam("user_id"),
        message.character_id.is_not(None),
        message.created_at > bindparam("since"),
        answered,
    )
    spent = func.coalesce(func.sum(usage.prompt_tokens + usage.completion_tokens), 0)
    on_day = (
        usage.platform == bindparam("platform"),
        usage.chat_id == bindparam("chat_id"),
        usage.day == bindparam("day"),
    )
    notices = (notice.platform == bindparam("platform"), notice.chat_id == bindparam("chat_id"))

    def told(scope: str, kind: NoticeKind) -> ScalarSelect[str]:
        """The day the ``kind`` notice of ``scope`` was said (``NULL``: it does not stand)."""
        who = notice.user_id == (literal(CHAT) if scope == CHAT else bindparam("user_id"))
        return select(notice.day).where(*notices, who, notice.kind == kind).scalar_subquery()

    return select(
        _count(replies),
        _nth(replies, "chat_nth"),
        _count(asked),
        _nth(asked, "member_nth"),
        select(spent).where(*on_day).scalar_subquery(),
        select(spent).where(*on_day, usage.user_id == bindparam("user_id")).scalar_subquery(),
        select(notice.text).where(*notices).order_by(notice.told_at.desc()).limit(1).scalar_subquery(),
        *(told(scope, kind) for scope, kind in _SCOPES),
    )


_PACE = _pace()
