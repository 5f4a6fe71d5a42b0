"""The governor: whether a message gets a reply now, and from which model.

Two things shut role-play bots down in busy public groups: a few members burning the owner's model
budget, and bursts that get the account rate-limited. The governor keeps, per chat and per member:

* **rate limits**: sliding one-minute windows (``[groups] replies_per_minute``,
  ``user_replies_per_minute``). Past one, the character says once to slow down, then stays silent
  until the window frees: nothing waits in a queue;
* **token budgets** per day (``[budgets]``), counted from the model's usage figures and kept in the
  database, so they hold across restarts and processes. Past ``soft_ratio`` the cheaper
  ``fallback_model`` answers; at the limit the character says once that it is done for the day.

Superusers are exempt from both; their replies are still counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from bot.config import zone

if TYPE_CHECKING:
    from bot.config import BotConfig, Price
    from bot.engine.model import Completion
    from bot.engine.packs import CharacterPack
    from bot.engine.prompt import TokenCounter
    from bot.messages import Incoming
    from storage import Repository
    from storage.usage import UsageRow

Verdict = Literal["answer", "slow_down", "spent", "silent"]

_SLOW_DOWN = {
    "en": '{name} holds up a hand: "One at a time, please. Give me a minute."',
    "zh": "{name}摆摆手：“慢一点，一个一个来，让我歇口气。”",
}
_SPENT = {
    "en": '{name} yawns: "That\'s all the talking I have in me today. Come back tomorrow."',
    "zh": "{name}打了个哈欠：“今天说得够多啦，明天再来找我吧。”",
}
WINDOW_S = 60.0


def slow_down_line(pack: CharacterPack) -> str:
    return _SLOW_DOWN.get(pack.settings.language, _SLOW_DOWN["en"]).format(name=pack.name)


def spent_line(pack: CharacterPack) -> str:
    return _SPENT.get(pack.settings.language, _SPENT["en"]).format(name=pack.name)


class SlidingWindow:
    """At most ``limit`` events per key in any ``window_s``; knows whom it has warned already."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}
        self._warned: set[Hashable] = set()

    def _pending(self, key: Hashable) -> deque[float]:
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window_s:
            events.popleft()
        if not events:
            self._warned.discard(key)
        return events

    def full(self, key: Hashable) -> bool:
        return len(self._pending(key)) >= self.limit

    def count(self, key: Hashable) -> None:
        self._pending(key).append(self._clock())

    def warn_once(self, key: Hashable) -> bool:
        """``True`` the first time ``key`` is over its limit in this stretch, then ``False``."""
        if key in self._warned:
            return False
        self._warned.add(key)
        return True


@dataclass(slots=True, frozen=True)
class Decision:
    verdict: Verdict
    model: str | None = None
    """The model to answer with, when not ``[llm] model`` (the budget's fallback)."""


class Governor:
    """Decides, per message, whether it is answered (see the module docstring)."""

    def __init__(
        self,
        config: BotConfig,
        repository: Repository,
        counter: TokenCounter,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.config = config
        self.repository = repository
        self.counter = counter
        self.chats = SlidingWindow(config.groups.replies_per_minute, clock=clock)
        self.members = SlidingWindow(config.groups.user_replies_per_minute, clock=clock)
        self._now = now
        self._told_spent: set[tuple[str, Hashable]] = set()

    def today(self) -> str:
        return local_day(self.config.scheduler.timezone, self._now())

    async def decide(self, incoming: Incoming) -> Decision:
        """Whether ``incoming`` gets its reply now (counting it when it does), and on which model."""
        if self.config.is_superuser(incoming.qualified_user):
            return Decision("answer")
        chat, member = incoming.key, (incoming.key, incoming.sender.user_id)
        for window, key in ((self.chats, chat), (self.members, member)):
            if window.full(key):
                return Decision("slow_down" if window.warn_once(key) else "silent")
        day = self.today()
        budgets = self.config.budgets
        chat_tokens = member_tokens = 0
        if budgets.chat_daily_tokens or budgets.user_daily_tokens:
            user = incoming.sender.user_id
            chat_tokens, member_tokens = await self.repository.usage.tokens_on(chat, user, day)
        limits = (
            (chat, chat_tokens, budgets.chat_daily_tokens),
            (member, member_tokens, budgets.user_daily_tokens),
        )
        spent = [key for key, used, limit in limits if limit and used >= limit]
        if spent:
            fresh = [(day, key) for key in spent if (day, key) not in self._told_spent]
            self._told_spent.update(fresh)
            return Decision("spent" if fresh else "silent")
        self.chats.count(chat)
        self.members.count(member)
        soft = any(limit and used >= budgets.soft_ratio * limit for _key, used, limit in limits)
        return Decision("answer", budgets.fallback_model or None if soft else None)

    async def record(
        self, incoming: Incoming, completions: Iterable[Completion], prompt_text: Callable[[], str]
    ) -> None:
        """Count what the model was paid for answering ``incoming`` (estimated from ``prompt_text()``
        where it reported none)."""
        day = self.today()
        for completion in completions:
            await self.repository.usage.add(
                incoming.key,
                incoming.sender.user_id,
                day,
                completion.model,
                *tokens_of(completion, prompt_text, self.counter),
            )


SUMMARIES = ""
"""The member id the rolling summaries' tokens are counted under: the chat's own spending."""


def tokens_of(
    completion: Completion, prompt_text: Callable[[], str], counter: TokenCounter
) -> tuple[int, int]:
    """``(prompt, completion)`` tokens as the model reported them, estimated where it did not (the
    prompt's text is only laid out then)."""
    prompt_tokens = completion.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = counter.count(prompt_text())
    completion_tokens = completion.completion_tokens
    if completion_tokens is None:
        completion_tokens = counter.count(completion.text)
    return prompt_tokens, completion_tokens


def local_day(timezone: str, moment: datetime) -> str:
    """``moment``'s date (``YYYY-MM-DD``) in ``timezone`` (``[scheduler] timezone``; the machine's
    zone when empty): the day budgets and ``/usage`` count by."""
    return (moment.astimezone(zone(timezone)) if timezone else moment.astimezone()).date().isoformat()


def month_start(day: str) -> str:
    return date.fromisoformat(day).replace(day=1).isoformat()


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    """``model``'s price: its own entry, else the longest entry it starts with (servers report
    ``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``)."""
    if model in prices:
        return prices[model]
    known = [name for name in prices if model.startswith(name)]
    return prices[max(known, key=len)] if known else None


def cost(rows: Iterable[UsageRow], prices: Mapping[str, Price]) -> float | None:
    """USD for ``rows``; ``None`` when no row's model has a price."""
    total, priced = 0.0, False
    for row in rows:
        price = price_of(row.model, prices)
        if price is not None:
            priced = True
            total += (row.prompt_tokens * price.input + row.completion_tokens * price.output) / 1_000_000
    return total if priced else None
