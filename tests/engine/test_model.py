from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import LLMConfig
from bot.engine.backends import create_chat_model
from bot.engine.model import MAX_RETRY_AFTER_S, OpenAIChatModel, _retry_after_s, _retry_delay_s
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
"""Asks the model to retry after 10 ms instead of its 0.5 s, 1 s, 2 s … backoff."""


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


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(server: FakeOpenAIServer) -> None:
    server.fail_next(429, headers={"Retry-After": "500"})
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match="asked to wait 500 s, longer than the 120 s the bot waits at most"):
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


async def test_a_retry_after_just_past_the_cap_is_not_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(503, headers={"retry-after-ms": str(int(MAX_RETRY_AFTER_S * 1000) + 1)})
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match=r"answered 503 and asked to wait 120\.001 s"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


async def test_a_retry_after_date_past_the_cap_is_not_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(429, headers={"Retry-After": email.utils.formatdate(time.time() + 3600, usegmt=True)})
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match="longer than the 120 s"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


def test_the_cap_and_the_backoff_bounds() -> None:
    assert MAX_RETRY_AFTER_S == 120
    assert _retry_delay_s(0, MAX_RETRY_AFTER_S, jitter=0.5) == MAX_RETRY_AFTER_S, "the cap itself is waited"
    assert _retry_delay_s(0, 0.25, jitter=0.5) == 0.25, "a wait the server asks for has no jitter"
    no_jitter = [_retry_delay_s(retry, None, jitter=0) for retry in range(7)]
    assert no_jitter == [0.5, 1, 2, 4, 8, 8, 8]
    most_jitter = [_retry_delay_s(retry, None, jitter=1) for retry in range(7)]
    assert most_jitter == [0.375, 0.75, 1.5, 3, 6, 6, 6]
    for asked in (0.0, -3.0, MAX_RETRY_AFTER_S + 1):  # nothing sensible asked: the backoff
        assert _retry_delay_s(1, asked, jitter=0) == 1
    assert _retry_delay_s(10_000, None, jitter=0) == 8, "no overflow after many retries"


def test_the_wait_a_server_asks_for() -> None:
    assert _retry_after_s(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    assert _retry_after_s(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert _retry_after_s(httpx.Headers({"retry-after-ms": "soon", "Retry-After": "2"})) == 2
    assert _retry_after_s(httpx.Headers({"Retry-After": "1e999"})) == float("inf")
    assert _retry_after_s(httpx.Headers({"Retry-After": "nan"})) is None
    assert _retry_after_s(httpx.Headers({"Retry-After": "whenever"})) is None
    assert _retry_after_s(httpx.Headers({})) is None
    dated = _retry_after_s(httpx.Headers({"Retry-After": email.utils.formatdate(time.time() + 30)}))
    assert dated is not None
    assert 28 <= dated <= 30


async def test_without_a_wait_asked_the_backoff_starts_at_half_a_second(server: FakeOpenAIServer) -> None:
    server.fail_next(500)
    model = model_for(server.base_url, max_retries=1)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text.startswith("Reply #2:")
    first, second = server.requests
    assert 0.37 <= second.received_at - first.received_at < 1.5, "0.5 s less up to a quarter"


async def test_the_server_can_say_whether_to_retry(server: FakeOpenAIServer) -> None:
    server.fail_next(503, headers={"x-should-retry": "false"})
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match=r"failed after 1 attempt, no retries: Error code: 503"):
        await model.complete(prompt())
    server.fail_next(400, headers={"x-should-retry": "true", **QUICK_RETRY})
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text.startswith("Reply #3:")
    assert [request.status for request in server.requests] == [503, 400, 200]


async def test_a_refusal_names_the_servers_error_message() -> None:
    with FakeOpenAIServer(api_key="right") as server:
        model = OpenAIChatModel(model="fake-model", base_url=server.base_url, api_key="wrong", timeout_s=5)
        with pytest.raises(
            ModelError, match=r"^the model server refused the request: Error code: 401 - Incorrect API key"
        ):
            await model.complete(prompt())
        await model.aclose()
        assert len(server.requests) == 1


async def test_a_failure_without_an_error_object_shows_the_start_of_its_body(
    server: FakeOpenAIServer,
) -> None:
    server.answer_next("upstream\n  overloaded " + "x" * 500, status=502, media_type="text/plain")
    model = model_for(server.base_url, max_retries=0)
    with pytest.raises(ModelError, match=r"no retries: Error code: 502 - upstream overloaded x+…$") as caught:
        await model.complete(prompt())
    await model.aclose()
    assert len(str(caught.value)) < 300


async def test_each_failed_answer_is_logged(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.engine.model")
    server.fail_next(503, headers=QUICK_RETRY)
    server.fail_next(400)
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match="refused"):
        await model.complete(prompt())
    await model.aclose()
    assert [record.getMessage() for record in caplog.records] == [
        "the model server answered 503, asking to wait 0.01 s",
        "the model server answered 400",
    ]


async def test_timeouts_are_retried(server: FakeOpenAIServer) -> None:
    server.answer_next(server.completion_json("late"), delay=2)
    model = model_for(server.base_url, timeout_s=0.3, max_retries=1)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text == "Reply #2: heard 'Tam:「Is the lamp lit?」'"
    assert len(server.requests) == 2


async def test_the_request_body_and_headers(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-7")
    model = OpenAIChatModel(
        model="fake-model", base_url=server.base_url + "/", api_key="sk-1", timeout_s=5, temperature=0.3
    )
    await model.complete(prompt())
    await model.aclose()
    request = server.last_request
    assert request.path == "/v1/chat/completions"
    assert request.json["temperature"] == 0.3
    assert request.json["max_tokens"] == 256
    assert request.headers["authorization"] == "Bearer sk-1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["openai-organization"] == "org-7"
    assert "openai-project" not in request.headers
    assert "「Storm?」" in request.all_text()


def test_the_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    model = OpenAIChatModel(model="m", base_url=None, api_key=None, timeout_s=5)
    assert str(model._url) == "https://api.openai.com/v1/chat/completions"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy.local:8000/v1/")
    model = OpenAIChatModel(model="m", base_url=None, api_key=None, timeout_s=5)
    assert str(model._url) == "http://proxy.local:8000/v1/chat/completions"
    model = OpenAIChatModel(model="m", base_url="https://h/openai?api-version=1", api_key=None, timeout_s=5)
    assert str(model._url) == "https://h/openai/chat/completions?api-version=1"


async def test_a_variant_shares_the_client_and_sends_its_model(server: FakeOpenAIServer) -> None:
    model = model_for(server.base_url)
    cheaper = model.variant("cheap-model")
    assert model.variant("fake-model") is model
    assert isinstance(cheaper, OpenAIChatModel)
    assert cheaper._client is model._client
    completion = await cheaper.complete(prompt())
    await model.aclose()
    assert server.last_request.model == "cheap-model"
    assert completion.model == "cheap-model"
    assert cheaper._client.is_closed


async def test_missing_usage_and_model_name(server: FakeOpenAIServer) -> None:
    body = server.completion_json("hi")
    del body["usage"], body["model"]
    server.answer_next(body)
    body = server.completion_json("again")
    body["choices"][0]["message"]["content"] = None
    body["usage"] = {"prompt_tokens": -1, "completion_tokens": True}
    server.answer_next(body)
    model = model_for(server.base_url)
    first, second = await model.complete(prompt()), await model.complete(prompt())
    await model.aclose()
    assert (first.text, first.model, first.prompt_tokens, first.completion_tokens) == (
        "hi",
        "fake-model",
        None,
        None,
    )
    assert (second.text, second.prompt_tokens, second.completion_tokens) == ("", None, None)
