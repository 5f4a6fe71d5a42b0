"""Rate limits and token budgets, with a clock the test moves, and ``/usage`` from recorded usage."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Price
from bot.engine.model import ChatModel, Completion, EchoChatModel
from bot.engine.prompt import Prompt, TokenCounter
from bot.governor import Governor
from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message

pytestmark = pytest.mark.both_databases

SUPERUSER = "1"  # conftest's config makes onebot:1 a superuser


class Clock:
    def __init__(self) -> None:
        self.seconds = 1000.0
        self.moment = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.moment += timedelta(seconds=seconds)


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
def clock(router: Router) -> Clock:
    clock = Clock()
    config = router.config.model_copy(
        update={"scheduler": router.config.scheduler.model_copy(update={"timezone": "UTC"})}
    )
    router.config = config
    router.governor = Governor(
        config, router.repository, TokenCounter.default(), clock=clock.monotonic, now=clock.now
    )
    return clock


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


async def test_a_member_over_the_limit_is_told_once_then_silence_until_the_minute_frees(
    router: Router, clock: Clock
) -> None:
    router.governor.members.limit = 2
    assert len(await ask(router, "one")) == 1
    assert len(await ask(router, "two")) == 1
    (warning,) = await ask(router, "three")
    assert warning == 'Orla Finch holds up a hand: "One at a time, please. Give me a minute."'
    assert await ask(router, "four") == []
    assert len(await ask(router, "someone else", user="43")) == 1, "other members are not held up"
    clock.advance(61)
    assert len(await ask(router, "five")) == 1


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
