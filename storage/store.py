"""What every store of the database shares: how it gets a session, and the key of a chat.

Each store (:mod:`storage.chats`, :mod:`storage.messages`, …) reads and writes the tables of one thing
the bot keeps. Every method takes an optional ``session``: given, the method runs inside that unit of
work (one message's turn reads its whole context, and then writes what it said, through one session
each); left out, the method opens a short transaction of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database


class ChatRef(Protocol):
    """A chat as the stores key it: ``(platform, chat_id)`` (the core's ``ChatKey`` is one)."""

    @property
    def platform(self) -> str: ...

    @property
    def chat_id(self) -> str: ...


@dataclass(slots=True, frozen=True, order=True)
class StoredChatKey:
    """A :class:`ChatRef` as a store hands one back (the storage layer does not import the core's
    ``ChatKey``; compare the two by their ``(platform, chat_id)``)."""

    platform: str
    chat_id: str


class Store:
    """Base of the stores: holds the database and opens sessions (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sessions = database.sessions

    @asynccontextmanager
    async def _session(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """``session`` itself, or a transaction of the store's own that commits when the block ends."""
        if session is not None:
            yield session
            return
        async with self._sessions.begin() as own:
            yield own


def rowcount(result: object) -> int:
    """How many rows a statement changed (0 when the driver cannot tell)."""
    return int(getattr(result, "rowcount", 0) or 0)
