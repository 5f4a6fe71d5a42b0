"""The storage watch: a database that is gone or cannot be written is noticed, said, and recovered.

Everything the bot knows lives in the database, so losing it silently is the worst failure: replies
would go on while nothing is remembered, or every message would go unanswered. The watch checks the
database every ``interval_s`` and whenever a message fails on it; the first failure is logged loudly
and told once to the superusers (in their private chats), and each chat that writes meanwhile is told
once that the bot cannot remember right now. A SQLite file deleted while the bot runs is written back
from the connection held since the start. When the database answers again, the superusers hear so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.messages import ChatKey, Reply
from bot.outbox import Outbox
from storage import Database

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "I can't remember anything right now (the bot's database is unavailable); an operator has been told."
)


class StorageWatch:
    """Notices database trouble, tells the superusers once, and recovers (see the module docstring)."""

    def __init__(self, database: Database, outbox: Outbox, superusers: Sequence[str]) -> None:
        self.database = database
        self.outbox = outbox
        self.inboxes = [
            ChatKey.for_chat(platform, "private", user)
            for platform, _, user in (entry.partition(":") for entry in superusers)
        ]
        """The superusers' private chats."""
        self.trouble: str | None = None
        """What is wrong now; ``None`` while the database works."""
        self._told: set[ChatKey] = set()

    async def check(self) -> str | None:
        """Look at the database now: restore a deleted SQLite file, note trouble or its end."""
        problem = await self.database.problem()
        if problem is not None and await self.database.restore():
            log.error("%s; it was written back from the connection held since the start", problem)
            await self._tell(f"{problem} while the bot was running; it has been written back.")
            problem = await self.database.problem()
        if problem is None:
            if self.trouble is not None:
                log.warning("the database works again (after: %s)", self.trouble)
                self.trouble = None
                self._told.clear()
                await self._tell("The bot's database works again.")
            return None
        await self.failed(problem)
        return problem

    async def failed(self, problem: str) -> None:
        """A read or write failed: log it loudly, and tell the superusers the first time."""
        log.error("DATABASE UNAVAILABLE: %s. Nothing said now is remembered until it is fixed.", problem)
        if self.trouble is None:
            self.trouble = problem
            await self._tell(f"The bot cannot use its database ({problem}); nothing is remembered meanwhile.")

    def notice_for(self, key: ChatKey) -> list[Reply]:
        """The one notice a chat gets while the database is unavailable (none after the first)."""
        if key in self._told:
            return []
        self._told.add(key)
        return [Reply(UNAVAILABLE, quote=False)]

    async def _tell(self, text: str) -> None:
        for inbox in self.inboxes:
            await self.outbox.announce(inbox, Reply(text, quote=False))
