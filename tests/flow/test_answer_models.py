"""A character with its own model, through the router: Orla's ``[llm]`` points at a second
OpenAI-compatible server while 苏小满 answers through the bot's; a dead second server falls back to
the bot's model (or apologises with ``fallback = false``), and usage follows the model that answered."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import BotConfig, parse_config
from bot.engine.model import OpenAIChatModel
from bot.engine.responder import DEFAULT_APOLOGY
from bot.messages import ChatKey
from bot.router import Router
from storage import Repository
from tests.messages import group_message
from tests.packs import ORLA_CAPTIONS, write_pack, write_xiaoman
from tests.support.bot_process import free_port
from tests.support.openai_server import FakeOpenAIServer

DOWN = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0}
"""Orla's ``[llm]`` on a closed port, without retries (the test need not wait for backoff)."""


@pytest.fixture
def bots_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="bots-model") as server:
        yield server


@pytest.fixture
def own_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="orla-model", api_key="orla-secret") as server:
        yield server


@pytest.fixture
def orla_llm() -> dict[str, object]:
    """What a test changes in Orla's ``[llm]`` (parametrized)."""
    return {}


@pytest.fixture
def config(
    tmp_path: Path, own_server: FakeOpenAIServer, orla_llm: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> BotConfig:
    monkeypatch.setenv("ORLA_KEY", "orla-secret")
    table = {"base_url": own_server.base_url, "model": "orla-model", "api_key_env": "ORLA_KEY"} | orla_llm
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
    write_pack(tmp_path / "characters", screenshots=ORLA_CAPTIONS, extra_toml=f"[llm]\n{lines}")
    write_xiaoman(tmp_path / "characters")
    return parse_config(
        {
            "admins": {"superusers": ["onebot:1"]},
            "budgets": {"prices": {"orla-model": {"input": 1.0, "output": 2.0}}},
        },
        source=tmp_path / "bot.toml",
    )


@pytest.fixture
async def model(bots_server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    """The bot's own model (``[llm]`` in bot.toml) on the first server."""
    model = OpenAIChatModel(
        model="bots-model", base_url=bots_server.base_url, api_key=None, timeout_s=5, max_retries=0
    )
    yield model
    await model.aclose()


async def test_a_character_answers_through_its_own_model_and_the_others_through_the_bots(
    router: Router, bots_server: FakeOpenAIServer, own_server: FakeOpenAIServer, repository: Repository
) -> None:
    (orla,) = await router.handle(group_message("is the lamp lit?", to_me=True))
    assert orla.text.startswith("Reply #1: heard")
    (request,) = own_server.requests
    assert request.model == "orla-model"
    assert request.headers["authorization"] == "Bearer orla-secret"
    assert "Orla Finch" in request.system_text()
    assert bots_server.requests == []

    (xiaoman,) = await router.handle(group_message("小满，来壶茶"))
    assert xiaoman.character == "xiaoman"
    assert [request.model for request in bots_server.requests] == ["bots-model"]
    assert len(own_server.requests) == 1

    rows = await repository.usage.rows("0000-00-00", "9999-99-99", ChatKey("onebot", "100"))
    assert sorted(row.model for row in rows) == ["bots-model", "orla-model"]
    (usage,) = await router.handle(group_message("/usage", user="1"))
    assert "$" in usage.text, "orla-model's price applies to its tokens"


async def test_who_and_info_say_which_model_a_character_uses(
    router: Router, own_server: FakeOpenAIServer
) -> None:
    (who,) = await router.handle(group_message("/who"))
    assert who.text.splitlines()[-1] == (
        f"It answers through its own model orla-model at {own_server.base_url} "
        "(falls back to the bot's model)."
    )
    (info,) = await router.handle(group_message("/character info xiaoman"))
    assert "It answers through the bot's model." in info.text.splitlines()
    for reply in (who, info):
        assert "orla-secret" not in reply.text
        assert "ORLA_KEY" not in reply.text


@pytest.mark.parametrize("orla_llm", [DOWN])
async def test_a_dead_model_falls_back_to_the_bots_and_says_so_once(
    router: Router,
    bots_server: FakeOpenAIServer,
    repository: Repository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        for number, text in enumerate(("is the lamp lit?", "and the boat?"), start=1):
            (reply,) = await router.handle(group_message(text, to_me=True))
            assert reply.text.startswith(f"Reply #{number}: heard"), "the bot's model answered"
    assert [request.model for request in bots_server.requests] == ["bots-model", "bots-model"]
    said = [record.getMessage() for record in caplog.records if "own model" in record.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("orla's own model orla-model failed (cannot reach the model server")
    rows = await repository.usage.rows("0000-00-00", "9999-99-99", ChatKey("onebot", "100"))
    assert [row.model for row in rows] == ["bots-model"], "usage is the fallback's"


@pytest.mark.parametrize("orla_llm", [DOWN | {"fallback": False}])
async def test_without_fallback_a_dead_model_gets_the_apology(
    router: Router, bots_server: FakeOpenAIServer
) -> None:
    (reply,) = await router.handle(group_message("is the lamp lit?", to_me=True))
    assert reply.text == DEFAULT_APOLOGY["en"]
    assert not reply.in_history
    assert bots_server.requests == []


@pytest.mark.parametrize("orla_llm", [{"style": "completion"}])
async def test_a_completion_style_model_is_asked_with_the_script(
    router: Router, bots_server: FakeOpenAIServer, own_server: FakeOpenAIServer, repository: Repository
) -> None:
    (reply,) = await router.handle(group_message("is the lamp lit?", to_me=True))
    (request,) = own_server.completion_requests
    assert own_server.requests == []
    assert bots_server.requests == []
    assert request.prompt is not None
    assert request.prompt.endswith("Pip:「is the lamp lit?」\nOrla Finch:「")
    assert reply.text == "Reply #1: continued 'Pip: is the lamp lit?'"
    rows = await repository.usage.rows("0000-00-00", "9999-99-99", ChatKey("onebot", "100"))
    assert [row.model for row in rows] == ["orla-model"]
