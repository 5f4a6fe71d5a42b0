from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import LLMConfig
from bot.engine.backends import create_chat_model
from bot.engine.model import SDK_MAX_RETRY_AFTER_S, OpenAIChatModel
from bot.engine.packs import parse_scene
from bot.engine.prompt import Prompt, PromptTokens, Turn
from bot.errors import ModelError, ModelTimeout
from tests.support.bot_process import free_port
from tests.support.openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def prompt() -> Prompt:
    return Prompt(
        character="Orla Finch",
        language="en",
        persona="You are Orla.",
        scenes=[parse_scene(Path("001.txt"), "Pip:「Storm?」\nOrla:「Aye.」")],
        history=[Turn("Pip", "hi"), Turn("Orla Finch", "Hello.", from_character=True)],
        message=Turn("Tam", "Is the lamp lit?"),
        tokens=PromptTokens(4, 8, 6, 7),
    )


QUICK_RETRY = {"retry-after-ms": "10"}
"""Asks the openai package to retry after 10 ms instead of its 0.5 s, 1 s, 2 s … backoff."""


def model_for(base_url: str, **overrides: float) -> OpenAIChatModel:
    options: dict[str, float] = {"timeout_s": 5, "max_retries": 3} | overrides
    return OpenAIChatModel(model="fake-model", base_url=base_url, api_key=None, **options)  # type: ignore[arg-type]


async def test_sends_the_prompt_as_chat_messages(server: FakeOpenAIServer) -> None:
    model = model_for(server.base_url)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text == "Reply #1: heard 'Tam:「Is the lamp lit?」'"
    assert completion.prompt_tokens
    assert completion.completion_tokens
    request = server.last_request
    assert request.model == "fake-model"
    assert [m["role"] for m in request.messages] == ["system", "user", "assistant", "user"]
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_retries_server_errors_and_rate_limits(server: FakeOpenAIServer) -> None:
    server.fail_next(500, headers=QUICK_RETRY)
    server.fail_next(429, headers=QUICK_RETRY)
    server.fail_next(503, headers=QUICK_RETRY)
    model = model_for(server.base_url)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text.startswith("Reply #4:")
    assert [request.status for request in server.requests] == [500, 429, 503, 200]


async def test_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    server.fail_next(500, times=3, headers=QUICK_RETRY)
    model = model_for(server.base_url, max_retries=2)
    with pytest.raises(ModelError, match=r"failed after 3 attempts: Error code: 500 - injected failure 500"):
        await model.complete(prompt())
    await model.aclose()


async def test_a_bad_request_is_not_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(400)
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match=r"refused the request: Error code: 400"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


async def test_timeout(server: FakeOpenAIServer) -> None:
    server.set_delay(2)
    model = model_for(server.base_url, timeout_s=0.3, max_retries=1)
    with pytest.raises(ModelTimeout, match=r"did not answer within 0\.3 s \(2 attempts\)"):
        await model.complete(prompt())
    await model.aclose()


async def test_connection_refused() -> None:
    model = model_for(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(ModelError, match=r"cannot reach the model server \(2 attempts\)"):
        await model.complete(prompt())
    await model.aclose()


def without_message(server: FakeOpenAIServer) -> None:
    body = server.completion_json("hi")
    del body["choices"][0]["message"]
    server.answer_next(body)


def without_choices(server: FakeOpenAIServer) -> None:
    body = server.completion_json("hi")
    del body["choices"]
    server.answer_next(body)


def content_not_text(server: FakeOpenAIServer) -> None:
    body = server.completion_json("hi")
    body["choices"][0]["message"]["content"] = {"text": "hi"}
    server.answer_next(body)


BROKEN_ANSWERS: dict[str, tuple[Callable[[FakeOpenAIServer], None], str]] = {
    "html page": (
        lambda server: server.answer_next("<html>Bad Gateway</html>", media_type="text/html"),
        r"not a chat completion \(JSON\): '<html>Bad Gateway</html>'",
    ),
    "cut-off JSON": (lambda server: server.answer_next('{"id": "chatcmpl-1", "choi'), "unreadable"),
    "JSON list": (lambda server: server.answer_next(b"[1, 2]"), "not a chat completion"),
    "choice without message": (without_message, "a choice without a message"),
    "no choices": (without_choices, "no choices"),
    "content not text": (content_not_text, "content is a dict, not text"),
}
"""Ways a server answers 200 with something that is not a usable completion, and what the error says."""


@pytest.mark.parametrize("name", BROKEN_ANSWERS)
async def test_a_broken_answer_is_a_model_error_and_not_retried(server: FakeOpenAIServer, name: str) -> None:
    script, message = BROKEN_ANSWERS[name]
    script(server)
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match=message):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


async def test_retry_after_is_waited_for(server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    server.fail_next(429, headers={"Retry-After": "1"})
    model = model_for(server.base_url)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text.startswith("Reply #2:")
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.99, "the second call waits the second asked for"
    assert "the model server answered 429, asking to wait 1 s" in caplog.text


async def test_a_retry_after_beyond_the_openai_cap_is_not_waited_for(server: FakeOpenAIServer) -> None:
    server.fail_next(429, headers={"Retry-After": "500"})
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match="asked to wait 500 s, longer than the 120 s"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


async def test_no_retries_when_max_retries_is_zero(server: FakeOpenAIServer) -> None:
    server.fail_next(503, headers=QUICK_RETRY)
    model = model_for(server.base_url, max_retries=0)
    with pytest.raises(ModelError, match=r"failed after 1 attempt, no retries: Error code: 503"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


def test_factory_picks_openai_when_a_base_url_is_set(tmp_path: Path) -> None:
    model = create_chat_model(LLMConfig(base_url="http://127.0.0.1:1/v1", model="m"), data_dir=tmp_path)
    assert isinstance(model, OpenAIChatModel)
    assert model.name == "m"


def test_the_retry_after_cap_is_the_openai_packages() -> None:
    from openai._constants import MAX_RETRY_AFTER_DELAY

    assert SDK_MAX_RETRY_AFTER_S == MAX_RETRY_AFTER_DELAY, "update the cap, its docs and README"
