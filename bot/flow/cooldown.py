"""Cooldowns per chat: the least time between two screenshots, two voices, two recorded lines."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from bot.messages import ChatKey


class ChatCooldown:
    """At most one of something per chat every ``seconds``: a screenshot, a voice, a recorded line (QQ
    rate-limits accounts that post bursts).

    It remembers only chats still cooling down, at most ``capacity`` of them: past that the one that
    posted longest ago is forgotten (at worst its next screenshot comes early).
    """

    def __init__(
        self, seconds: float, clock: Callable[[], float] = time.monotonic, capacity: int = 10_000
    ) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._clock = clock
        self._last: OrderedDict[ChatKey, float] = OrderedDict()
        """Oldest first: :meth:`used` moves a chat to the end."""

    def ready(self, key: ChatKey) -> bool:
        self._forget_cooled()
        return key not in self._last

    def used(self, key: ChatKey) -> None:
        self._last[key] = self._clock()
        self._last.move_to_end(key)
        self._forget_cooled()

    def _forget_cooled(self) -> None:
        horizon = self._clock() - self.seconds
        while self._last and (len(self._last) > self.capacity or next(iter(self._last.values())) <= horizon):
            self._last.popitem(last=False)

    def __len__(self) -> int:
        return len(self._last)
