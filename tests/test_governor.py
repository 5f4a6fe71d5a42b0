"""Rate limits and token budgets, with a clock the test moves, and ``/usage`` from recorded usage.

The clock drives the governor's day and windows, the database's timestamps and the timers of answers
put off until a window frees.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

import pytest

import storage.models
from bot.config import Price
from bot.engine.model import ChatModel, Completion, EchoChatModel
from bot.engine.prompt import Prompt, TokenCounter
from bot.governor import Governor
from bot.messages import ChatKey, Reply, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message

pytestmark = pytest.mark.both_databases

SUPERUSER = "1"  # conftest's config makes onebot:1 a superuser


@dataclass(slots=True)
class Timer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(slots=True)
class Clock:
    seconds: float = 1000.0
    moment: datetime = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    timers: list[Timer] = field(default_factory=list)

    def now(self) -> datetime:
        return self.moment

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.seconds + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on, firing the timers that come due (the answers they start run once the test
        awaits)."""
        self.seconds += seconds
        self.moment += timedelta(seconds=seconds)
        due = sorted((timer for timer in self.timers if timer.due <= self.seconds), key=lambda t: t.due)
        self.timers = [timer for timer in self.timers if timer.due > self.seconds]
        for timer in due:
            if not timer.cancelled:
                timer.callback()

    def stamps(self) -> type[datetime]:
        """A ``datetime`` whose ``now()`` is this clock's: the database's timestamps follow it."""
        clock = self

        class Stamped(datetime):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> Stamped:
                moment = clock.moment.astimezone(tz) if tz is not None else clock.moment.replace(tzinfo=None)
                return cls.fromtimestamp(moment.timestamp(), tz)

        return Stamped


class PricedModel(EchoChatModel):
    """Echoes; its variants answer under their own model name, so a test sees which one answered."""

    def variant(self, model: str) -> ChatModel:
        other = copy.copy(self)
        other.name = model
        return other


@pytest.fixture
def model() -> PricedModel:
    return PricedModel()


@pytest.fixture
def clock(router: Router, monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(storage.models, "datetime", clock.stamps())
    config = router.config.model_copy(
        update={"scheduler": router.config.scheduler.model_copy(update={"timezone": "UTC"})}
    )
    router.config = config
    router.governor = governor(router, clock)
    return clock


def governor(router: Router, clock: Clock) -> Governor:
    """A governor on the router's database, as another process (or this one restarted) has."""
    return Governor(
        router.config, router.repository, TokenCounter.default(), now=clock.now, call_later=clock.call_later
    )


def budgets(router: Router, **values: object) -> None:
    router.config = router.config.model_copy(
        update={"budgets": router.config.budgets.model_copy(update=values)}
    )
    router.governor.config = router.config


async def ask(router: Router, text: str, user: str = "42") -> list[str]:
    return [
        reply.text
        for reply in await router.handle(group_message(f"Orla, {text}", user=user, name=f"m{user}"))
    ]


async def test_a_member_over_the_limit_is_told_once_and_answered_when_the_minute_frees(
    router: Router, clock: Clock, model: PricedModel, announced: list[tuple[ChatKey, Reply]]
) -> None:
    router.governor.members.limit = 2
    assert len(await ask(router, "one")) == 1
    clock.advance(1)
    assert len(await ask(router, "two")) == 1
    clock.advance(1)
    (warning,) = await ask(router, "three")
    assert warning == 'Orla Finch holds up a hand: "One at a time, please. Give me a minute."'
    clock.advance(1)
    four = group_message("Orla, four", name="m42")
    assert await router.handle(four) == []
    assert len(await ask(router, "someone else", user="43")) == 1, "other members are not held up"

    clock.advance(56)  # "one" was answered 59 s ago: the member's window is still full
    await router.governor.later.join()
    assert announced == []
    clock.advance(1.5)
    await router.governor.later.join()
    ((key, later),) = announced
    assert (key, later.text, later.reply_to) == (four.key, "Orla Finch heard m42: four", four.message_id)
    assert ("m42", "three") in [(turn.speaker, turn.text) for turn in model.prompts[-1].history]

    clock.advance(61)
    assert await ask(router, "five") == ["Orla Finch heard m42: five"], "answered at once again"


async def test_a_lively_exchange_never_meets_the_default_limits(router: Router, clock: Clock) -> None:
    """One member talking with the character every 5 s for five minutes, another every 6–10 s."""
    gaps = itertools.cycle([6, 7, 8, 9, 10])
    other_due = 0.0
    for number in range(60):
        assert len(await ask(router, f"question {number}")) == 1
        if clock.seconds - 1000 >= other_due:
            assert len(await ask(router, f"and mine {number}", user="43")) == 1
            other_due += next(gaps)
        clock.advance(5)


async def test_a_flood_gets_the_members_replies_a_minute_and_is_told_once(
    router: Router, clock: Clock, model: PricedModel, announced: list[tuple[ChatKey, Reply]]
) -> None:
    """A scripted member posting once a second for two minutes, then going quiet."""
    limit = router.config.groups.user_replies_per_minute
    got = []
    for number in range(120):
        got.append(await ask(router, f"spam {number}"))
        clock.advance(1)
        await router.governor.later.join()
    answered = [number for number, replies in enumerate(got) if replies and "heard" in replies[0]]
    assert answered == [*range(limit), *range(60, 60 + limit)], "the limit in any minute"
    told = [number for number, replies in enumerate(got) if replies and "One at a time" in replies[0]]
    assert told == [limit], "told once, for the whole flood"
    assert announced == []

    clock.advance(60)
    await router.governor.later.join()
    ((_key, later),) = announced
    assert later.text == "Orla Finch heard m42: spam 119", "one answer for the pile: to the last message"
    assert model.prompts[-1].history[-1].text == "spam 118", "the earlier ones are in its history"


async def test_a_member_past_the_limit_is_answered_late_but_never_dropped(
    router: Router, clock: Clock, announced: list[tuple[ChatKey, Reply]]
) -> None:
    """With the old default of 6 a minute, a member writing every 6–10 s went past it, was told
    once, then never answered again. Now each message waits for the window (one answer for those
    that pile up meanwhile), and the slow-down line is not repeated while the member keeps the pace."""
    router.governor.members.limit = 6
    gaps = itertools.cycle([6, 7, 8, 9, 10])
    got = []
    for number in range(20):
        got.append(await ask(router, f"line {number}"))
        clock.advance(next(gaps))
        await router.governor.later.join()
    clock.advance(60)
    await router.governor.later.join()
    assert [replies[0] for replies in got[:6]] == [f"Orla Finch heard m42: line {n}" for n in range(6)]
    assert "One at a time" in got[6][0]
    assert got[7:] == [[]] * 13
    late = [reply.text.removeprefix("Orla Finch heard m42: ") for _key, reply in announced]
    assert late == [f"line {n}" for n in (7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19)]
    assert all(reply.quote and reply.reply_to for _key, reply in announced), "each quotes its message"


async def test_two_processes_share_one_limit_and_what_was_said_once(router: Router, clock: Clock) -> None:
    first, second = router.governor, governor(router, clock)
    first.members.limit = second.members.limit = 2
    router.governor = first
    assert len(await ask(router, "one")) == 1
    router.governor = second
    assert len(await ask(router, "two")) == 1
    (warning,) = await ask(router, "three")
    assert "One at a time" in warning
    router.governor = first
    assert await ask(router, "four") == [], "the other process counts the same replies"
    router.governor = governor(router, clock)  # a restart
    router.governor.members.limit = 2
    assert await ask(router, "five") == [], "and knows it said so"


async def test_a_full_chat_answers_each_members_latest_message_when_the_minute_frees(
    router: Router, clock: Clock, announced: list[tuple[ChatKey, Reply]]
) -> None:
    router.governor.chats.limit = 2
    assert len(await ask(router, "one", user="42")) == 1
    assert len(await ask(router, "two", user="43")) == 1
    clock.advance(1)
    (warning,) = await ask(router, "three", user="44")
    assert "One at a time" in warning, "the chat is told once"
    assert await ask(router, "four", user="45") == []
    assert await ask(router, "five", user="44") == []

    clock.advance(58)
    await router.governor.later.join()
    assert announced == []
    clock.advance(2)  # the chat's two replies of the minute are a minute old
    await router.governor.later.join()
    assert sorted(reply.text for _key, reply in announced) == [
        "Orla Finch heard m44: five",  # "three" is in its history
        "Orla Finch heard m45: four",
    ]


async def test_members_told_to_slow_down_in_one_chat_hear_different_lines(
    router: Router, clock: Clock
) -> None:
    router.governor.members.limit = 1
    told = []
    for user in ("42", "43", "44", "45"):
        await ask(router, "hello", user=user)
        told += await ask(router, "hello again", user=user)
        clock.advance(1)
    assert told == [
        'Orla Finch holds up a hand: "One at a time, please. Give me a minute."',
        'Orla Finch laughs: "Easy, easy. I\'ll get back to you in a moment."',
        'Orla Finch takes a breath: "So many questions! Let me catch up first."',
        'Orla Finch holds up a hand: "One at a time, please. Give me a minute."',
    ]


async def test_superusers_are_never_rate_limited(router: Router, clock: Clock) -> None:
    router.governor.members.limit = router.governor.chats.limit = 1
    replies = [await ask(router, f"q{n}", user=SUPERUSER) for n in range(4)]
    assert [len(texts) for texts in replies] == [1, 1, 1, 1]
    assert "One at a time" not in " ".join(text for texts in replies for text in texts)


async def test_usage_is_counted_from_the_models_figures(
    router: Router, clock: Clock, model: PricedModel
) -> None:
    await ask(router, "how is the lamp?")
    prompt = model.prompts[-1]
    group = ChatKey("onebot", "100")
    chat_tokens, own_tokens = await router.repository.usage.tokens_on(group, "42", "2026-12-02")
    assert chat_tokens == own_tokens == prompt.tokens.total + 8, "prompt + completion as the model reported"


class Silent(EchoChatModel):
    """Reports no usage, as some local servers do."""

    async def complete(self, prompt: Prompt) -> Completion:
        self.prompts.append(prompt)
        return Completion("Aye.", "quiet-model")


async def test_usage_is_estimated_when_the_model_reports_none(router: Router, clock: Clock) -> None:
    router.responder.model = Silent()
    await ask(router, "anything?")
    counter = TokenCounter.default()
    prompt = router.responder.model.prompts[-1]  # type: ignore[attr-defined]
    _chat, own = await router.repository.usage.tokens_on(ChatKey("onebot", "100"), "42", "2026-12-02")
    assert own == counter.count(prompt.system_text()) + counter.count("Aye.")


async def test_past_the_soft_limit_the_fallback_model_answers_and_at_the_hard_limit_the_character_stops(
    router: Router, clock: Clock, model: PricedModel
) -> None:
    await ask(router, "first")
    per_reply = model.prompts[-1].tokens.total + 8
    budgets(router, user_daily_tokens=int(per_reply * 2.5), soft_ratio=0.3, fallback_model="cheap-model")
    key = ChatKey("onebot", "100")

    await ask(router, "second")
    rows = await router.repository.usage.rows("2026-12-02", "2026-12-02", key)
    assert {row.model for row in rows} == {"echo", "cheap-model"}, "the second reply came from the fallback"

    await ask(router, "third")
    (stop,) = await ask(router, "fourth")
    assert "Come back tomorrow" in stop
    assert await ask(router, "fifth") == [], "said once"
    router.governor = governor(router, clock)  # a restart
    assert await ask(router, "sixth") == [], "said once, even across a restart"
    assert len(await ask(router, "a newcomer", user="43")) == 1, "the budget is the member's"

    clock.advance(24 * 3600)
    assert len(await ask(router, "a new day")) == 1


async def test_the_chats_budget_stops_everyone(router: Router, clock: Clock, model: PricedModel) -> None:
    budgets(router, chat_daily_tokens=1)
    await ask(router, "first")
    (stop,) = await ask(router, "second", user="43")
    assert "Come back tomorrow" in stop
    assert await ask(router, "third", user="44") == []


async def test_usage_shows_tokens_cost_top_members_and_what_is_left(
    router: Router, repository: Repository, clock: Clock
) -> None:
    budgets(router, prices={"gpt-4o-mini": Price(input=0.15, output=0.6)}, chat_daily_tokens=2_000_000)
    key = ChatKey("onebot", "100")
    await repository.chats.participant_name(key, "42", "Pip")
    await repository.chats.participant_name(key, "43", "Ines")
    await repository.usage.add(key, "42", "2026-12-02", "gpt-4o-mini-2024-07-18", 1_000_000, 0)
    await repository.usage.add(key, "43", "2026-12-02", "gpt-4o-mini", 200_000, 100_000)
    await repository.usage.add(key, "43", "2026-12-01", "gpt-4o-mini", 0, 1_000_000)
    await repository.usage.add(key, "43", "2026-11-30", "gpt-4o-mini", 5, 5)

    (reply,) = await router.handle(group_message("/usage", user=SUPERUSER, to_me=True))
    assert reply.text.splitlines()[:4] == [
        "Usage here today (2026-12-02): 1,300,000 tokens ($0.2400), 2 replies",
        "This month: 2,300,000 tokens ($0.8400)",
        "Most today: Pip 1,000,000 · Ines 300,000",
        "Left today: this chat 700,000 of 2,000,000 tokens; you 100,000 of 100,000 tokens",
    ]


async def test_usage_all_is_for_superusers(router: Router, repository: Repository, clock: Clock) -> None:
    await repository.usage.add(ChatKey("onebot", "100"), "42", "2026-12-02", "m", 10, 5)
    await repository.usage.add(ChatKey("discord", "7"), "9", "2026-12-02", "m", 100, 50)
    (refused,) = await router.handle(group_message("/usage all", user="42", to_me=True, role=Role.ADMIN))
    assert "superusers" in refused.text
    (reply,) = await router.handle(group_message("/usage all", user=SUPERUSER, to_me=True))
    assert "discord:7:" in reply.text
    assert reply.text.index("discord:7") < reply.text.index("onebot:100"), "the biggest spender first"
