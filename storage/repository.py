"""The repository: every store of the database, built once and handed to the core.

Each store holds the reads and writes of one thing the bot keeps (see :mod:`storage.store`); the core
calls them with a chat's key, so no query can forget the ``(platform, chat_id)`` filter, and never
builds queries itself.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from storage.catalog import CatalogChanges
from storage.chats import Chats
from storage.claims import Claims
from storage.deliveries import Deliveries
from storage.greetings import Greetings
from storage.limits import Limits
from storage.memory import Summaries
from storage.messages import Messages
from storage.traces import Traces
from storage.usage import Spending

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.db import Database
    from storage.store import ChatRef


class Repository:
    """The stores of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.chats = Chats(database)
        """Settings, disabled characters, bot admins and member names of each chat."""
        self.messages = Messages(database)
        self.summaries = Summaries(database, self.messages)
        self.usage = Spending(database)
        """Tokens spent per chat, member, day and model."""
        self.deliveries = Deliveries(database)
        """What the bot said in each chat and whether it was posted."""
        self.claims = Claims(database, self.deliveries)
        self.catalog = CatalogChanges(database)
        self.greetings = Greetings(database)
        self.limits = Limits(database)
        """Rate windows, budgets and notices, as the governor reads them."""
        self.traces = Traces(database)
        """Why each character reply came out as it did, for the web console's inspector."""

    def chat_lock(self, key: ChatRef) -> AbstractAsyncContextManager[None]:
        """Hold ``key``'s lock across every bot process on this database (see :meth:`Database.chat_lock`)."""
        return self.database.chat_lock(f"chat:{key.platform}:{key.chat_id}")

    async def forget_user(self, platform: str, user_id: str) -> int:
        """Delete every message ``user_id`` wrote on ``platform``, in every chat, and their names."""
        forgotten = await self.messages.forget_user(platform, user_id)
        await self.limits.forget_user(platform, user_id)
        self.chats.forget_names()
        return forgotten

    def unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction for several stores' calls (pass it as their ``session``)."""
        return self.database.sessions.begin()
