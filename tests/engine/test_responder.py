"""Every way the model can fail ends in the pack's apology, within the reply deadline: the real
:class:`Responder` against the real OpenAI-compatible test server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from bot.catalog import PackCatalog
from bot.config import BotConfig
from bot.engine.model import ChatModel, Completion, EchoChatModel, OpenAIChatModel
from bot.engine.packs import CharacterPack
from bot.engine.prompt import Prompt, PromptBuilder, TokenCounter, Turn
from bot.engine.responder import Responder
from bot.router import Router
from tests.messages import group_message
from tests.support.openai_server import FakeOpenAIServer

DEADLINE_S = 0.6
APOLOGY = "Sorry, my thoughts wandered off. Say that again in a moment?"
QUICK_RETRY = {"retry-after-ms": "10"}


@pytest.fixture
def config(config: BotConfig) -> BotConfig:
    """The shared test config with a reply deadline short enough for a test."""
    return config.model_copy(update={"llm": config.llm.model_copy(update={"reply_deadline_s": DEADLINE_S})})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def model(server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    """A real client of the test server: one retry, a per-request timeout far past the deadline."""
    model = OpenAIChatModel(
        model="fake-model", base_url=server.base_url, api_key="x", timeout_s=5, max_retries=1
    )
    yield model
    await model.aclose()


def responder_for(config: BotConfig, catalog: PackCatalog, model: ChatModel) -> Responder:
    return Responder(
        config=config,
        retriever=catalog.retriever,
        prompts=PromptBuilder(config.prompt, TokenCounter.default()),
        model=model,
        screenshots=catalog.screenshots,
    )


def orla(catalog: PackCatalog) -> CharacterPack:
    pack = catalog.packs.get("orla")
    assert pack is not None
    return pack


async def ask(responder: Responder, catalog: PackCatalog) -> tuple[str, float]:
    """The reply's text and how long it took; the reply must be a failure's."""
    started = time.monotonic()
    result = await responder.respond(orla(catalog), [], Turn("Pip", "Is the lamp lit?"))
    assert result.failed
    return result.text, time.monotonic() - started


def broken(mutate: Callable[[dict[str, object]], object]) -> Callable[[FakeOpenAIServer], None]:
    """Script a 200 answer: a valid completion with ``mutate`` applied to it."""

    def script(server: FakeOpenAIServer) -> None:
        body = server.completion_json("The lamp is lit.")
        mutate(body)
        server.answer_next(body)

    return script


def first_choice(body: dict[str, object]) -> dict[str, object]:
    choices = body["choices"]
    assert isinstance(choices, list)
    choice = choices[0]
    assert isinstance(choice, dict)
    return choice


FAILURES: dict[str, Callable[[FakeOpenAIServer], None]] = {
    "200, an HTML page": lambda s: s.answer_next("<html>Bad Gateway</html>", media_type="text/html"),
    "200, cut-off JSON": lambda s: s.answer_next('{"id": "chatcmpl-1", "choi'),
    "200, a choice without message": broken(lambda body: first_choice(body).pop("message")),
    "200, no choices": broken(lambda body: body.pop("choices")),
    "200, empty choices": broken(lambda body: body.update(choices=[])),
    "200, content not text": broken(lambda body: first_choice(body).update(message={"content": 42})),
    "200, empty content": broken(lambda body: first_choice(body).update(message={"content": ""})),
    "500 twice": lambda s: s.fail_next(500, times=2, headers=QUICK_RETRY),
    "429 twice": lambda s: s.fail_next(429, times=2, headers=QUICK_RETRY),
    "400": lambda s: s.fail_next(400),
    "429 asking for 10 minutes": lambda s: s.fail_next(429, headers={"Retry-After": "600"}),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_every_model_failure_gets_the_apology(
    config: BotConfig,
    catalog: PackCatalog,
    model: OpenAIChatModel,
    server: FakeOpenAIServer,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    FAILURES[failure](server)
    text, _took = await ask(responder_for(config, catalog, model), catalog)
    assert text == APOLOGY
    assert "for orla" in caplog.text, "the log says why there was no reply"


async def test_an_unexpected_exception_from_a_model_gets_the_apology(
    config: BotConfig, catalog: PackCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(EchoChatModel):
        async def complete(self, prompt: Prompt) -> Completion:
            raise KeyError("choices")

    text, _took = await ask(responder_for(config, catalog, Broken()), catalog)
    assert text == APOLOGY
    assert "the model echo failed unexpectedly" in caplog.text
    assert "Traceback" in caplog.text
    assert "no reply from the model for orla: the model failed unexpectedly: KeyError" in caplog.text


async def test_a_rate_limit_is_waited_for_then_answered(
    config: BotConfig, catalog: PackCatalog, model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    config = config.model_copy(update={"llm": config.llm.model_copy(update={"reply_deadline_s": 10})})
    server.fail_next(429, headers={"Retry-After": "1"})
    result = await responder_for(config, catalog, model).respond(orla(catalog), [], Turn("Pip", "lamp?"))
    assert result.text.startswith("Reply #2:")
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.99


async def test_a_slow_model_gets_the_apology_at_the_deadline(
    config: BotConfig, catalog: PackCatalog, model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.set_delay(3)
    text, took = await ask(responder_for(config, catalog, model), catalog)
    assert text == APOLOGY
    assert DEADLINE_S <= took < DEADLINE_S + 2, "the deadline, not timeout_s × attempts"


async def test_the_deadline_covers_the_reply_checks_second_ask(
    config: BotConfig, catalog: PackCatalog, model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.answer_next(server.completion_json("As an AI language model, I have no lighthouse."))
    server.answer_next(server.completion_json("The lamp's lit."), delay=3)
    started = time.monotonic()
    result = await responder_for(config, catalog, model).respond(orla(catalog), [], Turn("Pip", "lamp?"))
    assert time.monotonic() - started < DEADLINE_S + 2
    assert len(server.requests) == 2, "asked again after the first answer gave in"
    assert result.text == "Orla Finch gives you a long look and talks about something else."
    assert result.failed
    assert len(result.completions) == 1, "the answer that gave in was paid for"


async def test_a_model_that_never_answers_is_cancelled_at_the_deadline(
    config: BotConfig, catalog: PackCatalog
) -> None:
    class Stuck(EchoChatModel):
        cancelled = False

        async def complete(self, prompt: Prompt) -> Completion:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            raise AssertionError("never reached")

    stuck = Stuck()
    text, took = await ask(responder_for(config, catalog, stuck), catalog)
    assert text == APOLOGY
    assert took < DEADLINE_S + 2
    assert stuck.cancelled, "a local model stops its work when the deadline passes"


async def test_after_the_deadline_the_group_is_served_again(router: Router, server: FakeOpenAIServer) -> None:
    server.answer_next(server.completion_json("too late"), delay=5)
    started = time.monotonic()
    first = asyncio.create_task(router.handle(group_message("are you there?", to_me=True)))
    await server.wait_for_requests_async(1)
    (second,) = await router.handle(group_message("hello again", to_me=True))
    (apology,) = await first
    assert apology.text == APOLOGY
    assert second.text.startswith("Reply #2:")
    assert time.monotonic() - started < DEADLINE_S + 3, "the group's lock was freed at the deadline"
