"""Receive: the messages of one chat are handled one at a time, in order; chats run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from bot.messages import ChatKey


class ChatLocks:
    """One lock per chat, dropped again when nobody holds or waits for it.

    ``shared`` takes the chat's lock across processes (PostgreSQL's advisory locks), once this
    process's own turn has come, so several processes on one database never interleave a chat.
    """

    def __init__(self, shared: Callable[[ChatKey], AbstractAsyncContextManager[None]] | None = None) -> None:
        self._locks: dict[ChatKey, tuple[asyncio.Lock, int]] = {}
        self._shared = shared

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock, self._shared(key) if self._shared is not None else nullcontext():
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
