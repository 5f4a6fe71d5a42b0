"""A model per character: the ``[llm]`` table of a pack, the fallback wrapper, the registry."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from bot.config import LLMConfig, PromptConfig
from bot.engine.model import ChatModel, Completion, EchoChatModel, OpenAIChatModel, OpenAICompletionModel
from bot.engine.pack_models import FallbackModel, PackModels, describe_model
from bot.engine.packs import CharacterPack, load_pack
from bot.engine.prompt import Prompt, PromptBuilder, TokenCounter, Turn
from bot.errors import ModelError, ModelTimeout, PackError
from tests.packs import write_pack
from tests.support.bot_process import free_port
from tests.support.openai_server import FakeOpenAIServer

CLOSED = f"http://127.0.0.1:{free_port()}/v1"
"""A port nothing listens on."""
HEADER_LINE = 9
"""The line of ``[llm]`` in a pack written by :func:`write_pack` with it as ``extra_toml``."""


class Down(ChatModel):
    """A model that never answers."""

    name = "down"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.asked = 0

    async def complete(self, prompt: Prompt) -> Completion:
        self.asked += 1
        await asyncio.sleep(self.delay_s)
        raise ModelError("cannot reach the model server (1 attempt, no retries): ConnectError")


def pack_with(tmp_path: Path, llm: str, pack_id: str = "orla") -> CharacterPack:
    return load_pack(write_pack(tmp_path, pack_id, extra_toml=f"[llm]\n{llm}"))


def a_prompt(pack: CharacterPack) -> Prompt:
    return PromptBuilder(PromptConfig(), TokenCounter.default()).build(
        pack, pack.scenes[:1], [], Turn("Pip", "Is the lamp lit?")
    )


def test_the_llm_table_is_read(tmp_path: Path) -> None:
    pack = pack_with(tmp_path, 'model = "orla-7b"\nstyle = "completion"\n')
    assert pack.settings.llm is not None
    assert (pack.settings.llm.model, pack.settings.llm.style, pack.settings.llm.fallback) == (
        "orla-7b",
        "completion",
        True,
    )


@pytest.mark.parametrize(
    ("llm", "line", "message"),
    [
        (
            'model = "m"\nstyle = "poem"\n',
            HEADER_LINE + 2,
            "llm.style: Input should be 'chat' or 'completion'",
        ),
        (
            'model = "m"\napi_key = "sk-123"\n',
            HEADER_LINE + 2,
            "llm.api_key: unknown key; put the key in an env variable",
        ),
        ('base_url = "http://h/v1"\n', HEADER_LINE, "llm.model: Field required"),
        ('model = "m"\nbase_url = "h/v1"\n', HEADER_LINE + 2, "llm.base_url: Value error, must be an http"),
        ('model = "m"\ntimeout_s = 0\n', HEADER_LINE + 2, "llm.timeout_s: Input should be greater than 0"),
    ],
)
def test_a_bad_llm_table_names_the_file_and_line(tmp_path: Path, llm: str, line: int, message: str) -> None:
    with pytest.raises(PackError) as caught:
        pack_with(tmp_path, llm)
    assert caught.value.line == line
    assert caught.value.path.name == "character.toml"
    assert caught.value.reason.startswith(message)


async def test_the_fallback_answers_when_the_primary_fails_and_says_why(tmp_path: Path) -> None:
    down, echo = Down(), EchoChatModel()
    heard: list[ModelError] = []
    model = FallbackModel(down, echo, on_fallback=heard.append)
    completion = await model.complete(a_prompt(load_pack(write_pack(tmp_path))))
    assert completion.model == "echo", "usage is counted against the model that answered"
    assert model.name == "down"
    assert [str(error) for error in heard] == [
        "cannot reach the model server (1 attempt, no retries): ConnectError"
    ]


async def test_a_slow_primary_gets_its_share_of_the_deadline_only(tmp_path: Path) -> None:
    slow, echo = Down(delay_s=5), EchoChatModel()
    heard: list[ModelError] = []
    model = FallbackModel(slow, echo, on_fallback=heard.append, primary_limit_s=0.05)
    async with asyncio.timeout(2):
        completion = await model.complete(a_prompt(load_pack(write_pack(tmp_path))))
    assert completion.model == "echo"
    assert isinstance(heard[0], ModelTimeout)


async def test_packs_share_a_model_per_endpoint_and_log_a_fallback_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    llm = f'model = "orla-7b"\nbase_url = "{CLOSED}"\nmax_retries = 0\n'
    orla, wren = pack_with(tmp_path, llm), pack_with(tmp_path, llm, "wren")
    plain = load_pack(write_pack(tmp_path / "plain"))
    echo = EchoChatModel()
    models = PackModels(echo, LLMConfig(timeout_s=2))
    try:
        assert models.for_pack(plain) is echo
        first, second = models.for_pack(orla), models.for_pack(wren)
        assert isinstance(first, FallbackModel)
        assert isinstance(second, FallbackModel)
        assert first.primary is second.primary, "one client per endpoint"
        assert isinstance(first.primary, OpenAIChatModel)
        assert first.primary.max_retries == 0
        with caplog.at_level(logging.DEBUG, "bot.engine.pack_models"):
            for _ in range(3):
                completion = await models.for_pack(orla).complete(a_prompt(orla))
                assert completion.model == "echo"
        warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert warnings[0].getMessage().startswith("orla's own model orla-7b failed (cannot reach")
    finally:
        await models.aclose()


async def test_the_budgets_cheaper_model_applies_to_the_fallback_only(tmp_path: Path) -> None:
    orla = pack_with(tmp_path, f'model = "orla-7b"\nbase_url = "{CLOSED}"\n')
    bots = OpenAIChatModel(model="big", base_url=CLOSED, api_key=None, timeout_s=1)
    models = PackModels(bots, LLMConfig())
    try:
        chosen = models.for_pack(orla, bots.variant("small"))
        assert isinstance(chosen, FallbackModel)
        assert (chosen.name, chosen.secondary.name) == ("orla-7b", "small")
    finally:
        await models.aclose()
        await bots.aclose()


def test_the_description_never_shows_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORLA_KEY", "sk-very-secret")
    orla = pack_with(
        tmp_path,
        'model = "gpt-x"\nbase_url = "https://user:sk-pw@api.example.com/v1?key=sk-q"\n'
        'api_key_env = "ORLA_KEY"\nfallback = false\n',
    )
    text = describe_model(orla, LLMConfig())
    assert (
        text == "answers through its own model gpt-x at https://api.example.com/v1 (apologises when it fails)"
    )
    plain = load_pack(write_pack(tmp_path / "plain"))
    assert describe_model(plain, LLMConfig()) == "answers through the bot's model"


async def test_the_completion_style_sends_the_script_to_completions(tmp_path: Path) -> None:
    orla = load_pack(write_pack(tmp_path))
    with FakeOpenAIServer(model="base-270m") as server:
        server.reply_text("The lamp is lit.」\nPip:「Good.」")
        model = OpenAICompletionModel(
            model="base-270m", base_url=server.base_url, api_key=None, timeout_s=5, max_retries=0
        )
        try:
            completion = await model.complete(a_prompt(orla))
        finally:
            await model.aclose()
        (request,) = server.completion_requests
    assert server.requests == [], "no chat-completions request"
    assert request.path == "/v1/completions"
    assert request.prompt is not None
    assert request.prompt.endswith("Pip:「Is the lamp lit?」\nOrla Finch:「")
    assert request.json["stop"] == ["」", "\n"]
    assert completion.text == "The lamp is lit.", "a server that ignores stop is cut at the line's end"
    assert completion.model == "base-270m"
    assert completion.prompt_tokens is not None


def test_the_documented_llm_table_loads(tmp_path: Path) -> None:
    page = (Path(__file__).parents[2] / "docs" / "characters.md").read_text("utf-8")
    block = next(block for block in re.findall(r"```toml\n(.+?)```", page, re.S) if block.startswith("[llm]"))
    pack = load_pack(write_pack(tmp_path, extra_toml=block))
    assert pack.settings.llm is not None
    assert (pack.settings.llm.model, pack.settings.llm.api_key_env) == ("orla-7b", "ORLA_API_KEY")
