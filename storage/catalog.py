"""Catalog changes: characters served or removed by one process, for the others to follow."""

from __future__ import annotations

from typing import Literal, cast

from sqlalchemy import func, select

from storage.models import CatalogChange
from storage.store import Store

CatalogAction = Literal["serve", "remove", "chat"]
"""``serve`` and ``remove`` a character; ``chat``: a chat's settings changed (:mod:`storage.chats`)."""


class CatalogChanges(Store):
    """The ``catalog_changes`` table: a feed other processes poll."""

    async def record(self, pack_id: str, action: CatalogAction, *, origin: str) -> int:
        async with self._session(None) as session:
            change = CatalogChange(pack_id=pack_id, action=action, origin=origin)
            session.add(change)
            await session.flush()
            return change.id

    async def after(self, after: int) -> list[tuple[int, str, CatalogAction, str]]:
        """``(id, pack_id, action, origin)`` of the changes after ``after``, oldest first."""
        async with self._session(None) as session:
            rows = await session.execute(
                select(CatalogChange.id, CatalogChange.pack_id, CatalogChange.action, CatalogChange.origin)
                .where(CatalogChange.id > after)
                .order_by(CatalogChange.id)
            )
            return [(row.id, row.pack_id, cast(CatalogAction, row.action), row.origin) for row in rows]

    async def last(self) -> int:
        async with self._session(None) as session:
            return int(await session.scalar(select(func.coalesce(func.max(CatalogChange.id), 0))) or 0)
