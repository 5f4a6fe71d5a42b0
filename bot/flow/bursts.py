"""The debounce: a burst of messages from one user in one chat gets one answer, to its last message."""

from __future__ import annotations

import asyncio
import itertools

from bot.flow.gather import Said
from bot.messages import ChatKey


class Bursts:
    """The debounce: a burst of messages from one user in one chat gets one answer, to its last message.

    Each message joins its sender's burst with the characters it owes an answer; after waiting, only
    the newest message of the burst answers, for all of them, each answering the newest message of
    the burst it witnessed (room talk is witnessed by all).
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[ChatKey, str], tuple[int, dict[str, int]]] = {}
        self._tokens = itertools.count(1)

    def add(self, burst: tuple[ChatKey, str], said: Said) -> int:
        token = next(self._tokens)
        _previous, owed = self._pending.get(burst, (0, {}))
        if said.room_message is not None:
            owed = dict.fromkeys(owed, said.room_message)
        self._pending[burst] = (token, {**owed, **said.owed})
        return token

    async def settle(self, burst: tuple[ChatKey, str], token: int, seconds: float) -> dict[str, int] | None:
        """Wait ``seconds``; then what the burst owes (character → message to answer) if ``token`` is
        still its newest message, else ``None`` (a newer message answers)."""
        await asyncio.sleep(seconds)
        latest, owed = self._pending.get(burst, (0, {}))
        if latest != token:
            return None
        del self._pending[burst]
        return owed
