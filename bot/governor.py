"""The governor: whether a message gets a reply now, later, or not at all, and from which model.

Two things shut role-play bots down in busy public groups: a few members burning the owner's model
budget, and bursts that get the account rate-limited. The governor keeps, per chat and per member:

* **rate limits**: sliding one-minute windows of the replies a chat got (``[groups]
  replies_per_minute``) and a member got there (``user_replies_per_minute``), counted in the
  database from what was said, so every process on one database shares one limit. Past one, the
  character says once to slow down, and the member's latest message is answered when the window
  frees (:class:`Later`): one reply for the pile, the earlier messages in its history;
* **token budgets** per day (``[budgets]``), counted from the model's usage figures and kept in the
  database, so they hold across restarts and processes. Past ``soft_ratio`` the cheaper
  ``fallback_model`` answers; at the limit the character says once that it is done for the day.

What was said once is noted in the database too (``notices``), so a restart does not say it again.
Superusers are exempt from both; their replies are still counted. One statement per decision reads
it all (:meth:`storage.limits.Limits.pace`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal, Protocol

from bot.config import zone
from bot.engine.replies import fresh_line
from storage.limits import CHAT, NoticeKind

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import BotConfig, Price
    from bot.engine.model import Completion
    from bot.engine.packs import CharacterPack
    from bot.engine.prompt import TokenCounter
    from bot.messages import Incoming
    from storage import Repository
    from storage.limits import Pace
    from storage.usage import UsageRow

log = logging.getLogger(__name__)

Verdict = Literal["answer", "later", "spent"]
WINDOW_S = 60.0
LATER_CAPACITY = 10_000
"""The most put-off answers waiting at once in one process (one per member of a chat)."""
MARGIN_S = 0.25
"""A put-off answer is tried this long after its window frees."""

_LINES: dict[NoticeKind, dict[str, tuple[str, ...]]] = {
    "slow_down": {
        "en": (
            '{name} holds up a hand: "One at a time, please. Give me a minute."',
            '{name} laughs: "Easy, easy. I\'ll get back to you in a moment."',
            '{name} takes a breath: "So many questions! Let me catch up first."',
        ),
        "zh": (
            "{name}摆摆手：“慢一点，一个一个来，让我歇口气。”",
            "{name}笑着说：“别急别急，等我一会儿就回你。”",
            "{name}深吸一口气：“问题太多啦，先让我缓一缓。”",
        ),
    },
    "spent": {
        "en": (
            '{name} yawns: "That\'s all the talking I have in me today. Come back tomorrow."',
            '{name} stretches: "I\'m talked out for today. Tomorrow, then."',
            '{name} waves: "Enough words for one day. Find me again tomorrow."',
        ),
        "zh": (
            "{name}打了个哈欠：“今天说得够多啦，明天再来找我吧。”",
            "{name}伸了个懒腰：“今天的话都说完啦，咱们明天见。”",
            "{name}挥挥手：“今天就聊到这儿，明天再来。”",
        ),
    },
}


def notice_lines(pack: CharacterPack, kind: NoticeKind) -> list[str]:
    """The character's lines for a ``kind`` notice: its own (``slow_down``/``spent`` in
    ``character.toml``), else neutral ones in its language."""
    own = pack.settings.slow_down if kind == "slow_down" else pack.settings.spent
    if own:
        return list(own)
    texts = _LINES[kind]
    return [line.format(name=pack.name) for line in texts.get(pack.settings.language, texts["en"])]


@dataclass(slots=True)
class RateLimit:
    """At most ``limit`` in any window of the governor's ``window_s``."""

    limit: int


@dataclass(slots=True, frozen=True)
class Decision:
    verdict: Verdict
    model: str | None = None
    """The model to answer with, when not ``[llm] model`` (the budget's fallback)."""
    line: str = ""
    """What the character says now instead (slow down, or done for today); empty: nothing."""
    retry_in: float | None = None
    """``later``: seconds until the window frees and the put-off answer is tried again."""


class _Handle(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], _Handle]
"""Runs a callback after a delay (the event loop's ``call_later``; tests pass their clock's)."""
Again = Callable[[], Awaitable[object]]
"""Answers a put-off message through the normal path (the router's)."""


class Later:
    """Answers put off until a rate window frees: at most one per key (a member of a chat), the
    latest message's; a newer one replaces it, and its history holds the earlier ones.

    Bounded: past ``capacity`` keys waiting, the longest-waiting answer is given up (and logged).
    """

    def __init__(self, capacity: int = LATER_CAPACITY, call_later: CallLater | None = None) -> None:
        self.capacity = capacity
        self._call_later = call_later
        self._waiting: OrderedDict[Hashable, _Handle] = OrderedDict()
        self._running: set[asyncio.Task[None]] = set()

    def put(self, key: Hashable, delay_s: float, again: Again) -> None:
        """Run ``again`` in ``delay_s`` seconds, instead of what ``key`` was waiting for."""
        self.cancel(key)
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._waiting[key] = call_later(delay_s, partial(self._start, key, again))
        while len(self._waiting) > self.capacity:
            oldest, handle = self._waiting.popitem(last=False)
            handle.cancel()
            log.warning("%s: gave up a put-off answer: more than %d are waiting", oldest, self.capacity)

    def cancel(self, key: Hashable) -> None:
        """``key`` waits for nothing any more (it was answered meanwhile)."""
        if (handle := self._waiting.pop(key, None)) is not None:
            handle.cancel()

    def _start(self, key: Hashable, again: Again) -> None:
        self._waiting.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._run(key, again), name=f"answer {key} later")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @staticmethod
    async def _run(key: Hashable, again: Again) -> None:
        try:
            await again()
        except Exception:
            log.exception("%s: the put-off answer failed", key)

    def __len__(self) -> int:
        return len(self._waiting)

    async def join(self) -> None:
        """Wait until the answers that started have finished (tests)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def aclose(self) -> None:
        """Give up every answer still waiting or running (the bot stops)."""
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


class Governor:
    """Decides, per message, whether it is answered (see the module docstring)."""

    def __init__(
        self,
        config: BotConfig,
        repository: Repository,
        counter: TokenCounter,
        *,
        now: Callable[[], datetime] = datetime.now,
        call_later: CallLater | None = None,
    ) -> None:
        self.config = config
        self.repository = repository
        self.counter = counter
        self.chats = RateLimit(config.groups.replies_per_minute)
        self.members = RateLimit(config.groups.user_replies_per_minute)
        self.window_s = WINDOW_S
        self.later = Later(call_later=call_later)
        self._now = now

    def today(self) -> str:
        return local_day(self.config.scheduler.timezone, self._now())

    async def decide(
        self,
        incoming: Incoming,
        pack: CharacterPack,
        *,
        again: Again | None = None,
        session: AsyncSession | None = None,
    ) -> Decision:
        """Whether ``incoming`` gets ``pack``'s reply now, and on which model: one read, in
        ``session`` when given (a unit of work of the caller's).

        ``later`` when a rate window is full: ``again`` then runs once it frees, unless the member's
        next message comes first (it replaces it, or is answered and cancels it).
        """
        user_id = incoming.sender.user_id
        member = (incoming.key, user_id)
        if self.config.is_superuser(incoming.qualified_user):
            self.later.cancel(member)
            return Decision("answer")
        now = self._now().astimezone(UTC)
        day = self.today()
        pace = await self.repository.limits.pace(
            incoming.key,
            user_id,
            since=now - timedelta(seconds=self.window_s),
            chat_limit=self.chats.limit,
            member_limit=self.members.limit,
            day=day,
            session=session,
        )
        budgets = self.config.budgets
        limits = (
            (CHAT, pace.chat_tokens, budgets.chat_daily_tokens),
            (user_id, pace.member_tokens, budgets.user_daily_tokens),
        )
        if spent := [scope for scope, used, limit in limits if limit and used >= limit]:
            self.later.cancel(member)
            fresh = [scope for scope in spent if pace.told.get((scope, "spent")) != day]
            line = await self._tell(incoming, pack, fresh, "spent", day, pace, session)
            return Decision("spent", line=line)
        if waits := self._waits(pace, user_id):
            free_at = max(at or now for _scope, at in waits) + timedelta(seconds=self.window_s)
            retry_in = max((free_at - now).total_seconds(), 0.0) + MARGIN_S
            if again is not None:
                self.later.put(member, retry_in, again)
            scope = waits[0][0]
            fresh = [] if (scope, "slow_down") in pace.told else [scope]
            line = await self._tell(incoming, pack, fresh, "slow_down", day, pace, session)
            return Decision("later", line=line, retry_in=retry_in)
        self.later.cancel(member)
        await self._withdraw(incoming, pace, session)
        soft = any(limit and used >= budgets.soft_ratio * limit for _scope, used, limit in limits)
        return Decision("answer", budgets.fallback_model or None if soft else None)

    def _waits(self, pace: Pace, user_id: str) -> list[tuple[str, datetime | None]]:
        """The full windows, chat first: ``(scope, when its oldest counted event was)``."""
        waits: list[tuple[str, datetime | None]] = []
        if pace.chat_replies >= self.chats.limit:
            waits.append((CHAT, pace.chat_full_at))
        if pace.member_replies >= self.members.limit:
            waits.append((user_id, pace.member_full_at))
        return waits

    async def _tell(
        self,
        incoming: Incoming,
        pack: CharacterPack,
        scopes: list[str],
        kind: NoticeKind,
        day: str,
        pace: Pace,
        session: AsyncSession | None,
    ) -> str:
        """``pack``'s ``kind`` line for ``scopes``, noted as said; ``""`` when told already."""
        if not scopes:
            return ""
        line = fresh_line(notice_lines(pack, kind), [pace.last_told])
        await self.repository.limits.tell(incoming.key, scopes, kind, day=day, text=line, session=session)
        return line

    async def _withdraw(self, incoming: Incoming, pace: Pace, session: AsyncSession | None) -> None:
        """A stretch of "slow down" ends once the chat (or member) is answered with its window at most
        half full: not while answers put off keep it full."""
        user_id = incoming.sender.user_id
        stale = [
            scope
            for scope, used, limit in (
                (CHAT, pace.chat_replies, self.chats.limit),
                (user_id, pace.member_replies, self.members.limit),
            )
            if (scope, "slow_down") in pace.told and 2 * used < limit
        ]
        if stale:
            await self.repository.limits.withdraw(incoming.key, stale, "slow_down", session=session)

    async def record(
        self,
        incoming: Incoming,
        completions: Iterable[Completion],
        prompt_text: Callable[[], str],
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Count what the model was paid for answering ``incoming`` (estimated from ``prompt_text()``
        where it reported none), in ``session`` when given (the record stage's unit of work)."""
        day = self.today()
        for completion in completions:
            await self.repository.usage.add(
                incoming.key,
                incoming.sender.user_id,
                day,
                completion.model,
                *tokens_of(completion, prompt_text, self.counter),
                session=session,
            )

    async def aclose(self) -> None:
        """Give up the answers still put off (the bot stops)."""
        await self.later.aclose()


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
