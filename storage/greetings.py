"""Greetings: each chat's daily in-character greeting, and the day it last greeted."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update

from storage.models import Greeting
from storage.store import ChatRef, Store, rowcount


@dataclass(slots=True, frozen=True)
class SavedGreeting:
    """A chat's daily greeting as stored: ``at`` is ``HH:MM`` in ``timezone`` (empty: the machine's)."""

    platform: str
    chat_id: str
    at: str
    timezone: str
    last_sent: str | None
    """The local date (ISO) of the last greeting sent."""


def _saved(row: Greeting) -> SavedGreeting:
    return SavedGreeting(row.platform, row.chat_id, row.at, row.timezone, row.last_sent)


class Greetings(Store):
    """The ``greetings`` table."""

    async def save(self, key: ChatRef, *, at: str, timezone: str, created_by: str) -> None:
        """Turn on (or move) the chat's daily greeting; the day it last greeted is kept."""
        async with self._session(None) as session:
            row = await session.get(Greeting, (key.platform, key.chat_id))
            if row is None:
                row = Greeting(platform=key.platform, chat_id=key.chat_id, last_sent=None)
                session.add(row)
            row.at, row.timezone, row.created_by = at, timezone, created_by

    async def delete(self, key: ChatRef) -> bool:
        async with self._session(None) as session:
            result = await session.execute(
                delete(Greeting).where(Greeting.platform == key.platform, Greeting.chat_id == key.chat_id)
            )
            return bool(rowcount(result))

    async def get(self, key: ChatRef) -> SavedGreeting | None:
        async with self._session(None) as session:
            row = await session.get(Greeting, (key.platform, key.chat_id))
            return None if row is None else _saved(row)

    async def all(self) -> list[SavedGreeting]:
        async with self._session(None) as session:
            rows = await session.scalars(select(Greeting).order_by(Greeting.platform, Greeting.chat_id))
            return [_saved(row) for row in rows]

    async def claim_day(self, key: ChatRef, day: str) -> bool:
        """Mark the chat greeted on ``day``; ``False`` when it already was, or has no greeting.

        One conditional update, so two processes firing the same greeting cannot both win.
        """
        async with self._session(None) as session:
            result = await session.execute(
                update(Greeting)
                .where(
                    Greeting.platform == key.platform,
                    Greeting.chat_id == key.chat_id,
                    or_(Greeting.last_sent.is_(None), Greeting.last_sent != day),
                )
                .values(last_sent=day)
            )
            return bool(rowcount(result))

    async def release_day(self, key: ChatRef, day: str, before: str | None) -> None:
        """Undo :meth:`claim_day` after a greeting that could not be sent, so a retry may send it."""
        async with self._session(None) as session:
            await session.execute(
                update(Greeting)
                .where(
                    Greeting.platform == key.platform,
                    Greeting.chat_id == key.chat_id,
                    Greeting.last_sent == day,
                )
                .values(last_sent=before)
            )
