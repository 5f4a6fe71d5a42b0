from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import LLMConfig
from bot.engine.model import OpenAIChatModel, create_chat_model
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


def model_for(base_url: str, **overrides: float) -> OpenAIChatModel:
    options: dict[str, float] = {"timeout_s": 5, "max_retries": 3, "backoff_s": 0.01} | overrides
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
    server.fail_next(500)
    server.fail_next(429)
    server.fail_next(503)
    model = model_for(server.base_url)
    completion = await model.complete(prompt())
    await model.aclose()
    assert completion.text.startswith("Reply #4:")
    assert [request.status for request in server.requests] == [500, 429, 503, 200]


async def test_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    server.fail_next(500, times=3)
    model = model_for(server.base_url, max_retries=2)
    with pytest.raises(ModelError, match="failed after 3 attempts"):
        await model.complete(prompt())
    await model.aclose()


async def test_a_bad_request_is_not_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(400)
    model = model_for(server.base_url)
    with pytest.raises(ModelError, match="refused the request"):
        await model.complete(prompt())
    await model.aclose()
    assert len(server.requests) == 1


async def test_timeout(server: FakeOpenAIServer) -> None:
    server.set_delay(2)
    model = model_for(server.base_url, timeout_s=0.3, max_retries=1)
    with pytest.raises(ModelTimeout, match=r"did not answer within 0\.3 s"):
        await model.complete(prompt())
    await model.aclose()


async def test_connection_refused() -> None:
    model = model_for(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(ModelError, match="failed after 2 attempts"):
        await model.complete(prompt())
    await model.aclose()


def test_factory_picks_openai_when_a_base_url_is_set(tmp_path: Path) -> None:
    model = create_chat_model(LLMConfig(base_url="http://127.0.0.1:1/v1", model="m"), data_dir=tmp_path)
    assert isinstance(model, OpenAIChatModel)
    assert model.name == "m"
