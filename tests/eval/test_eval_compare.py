"""``python -m bot eval --models bot,pack``: the bot's model against a character's own ``[llm]`` model,
each a real OpenAI-compatible server, the same judge scoring both."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import BotConfig, parse_config
from bot.engine.packs import load_packs
from bot.errors import ConfigError
from bot.eval.judge import Price
from bot.eval.models import BOT, PACK, Endpoint, parse_models
from bot.eval.run import EvalOptions, run_eval
from tests.packs import write_pack
from tests.support.openai_server import FakeOpenAIServer, ReplyFn

SHIPPED = Path(__file__).resolve().parents[2] / "characters"
DIMENSIONS = ["in_character", "consistency", "tone", "fluency"]


def judge_or_answer(model: str) -> ReplyFn:
    """A reply function: judge verdicts (the bot's answers all 4s; the pack's 5/3/4/4 and 5/3/2/4 in
    turn), else an answer naming ``model`` and numbering itself."""
    numbers = count(1)

    def reply(body: dict[str, Any]) -> str:
        texts = " ".join(str(message.get("content")) for message in body.get("messages", []))
        if "You judge how well an AI plays" in texts:
            if numbered := re.search(r"\[pack-model\] reply (\d+)", texts):
                tone = 4 if int(numbered.group(1)) % 2 else 2
                return json.dumps({"in_character": 5, "consistency": 3, "tone": tone, "fluency": 4})
            return json.dumps(dict.fromkeys(DIMENSIONS, 4))
        return f"[{model}] reply {next(numbers)}: the lamp is lit."

    return reply


@pytest.fixture
def bot_server() -> Iterator[FakeOpenAIServer]:
    """The bot's model, and the judge."""
    with FakeOpenAIServer() as server:
        server.reply_with(judge_or_answer("bot-model"))
        yield server


@pytest.fixture
def pack_server() -> Iterator[FakeOpenAIServer]:
    """Orla's own model."""
    with FakeOpenAIServer() as server:
        server.reply_with(judge_or_answer("pack-model"))
        yield server


def shipped_packs(root: Path, orla_llm: str) -> Path:
    """The shipped packs copied under ``root``, Orla with ``orla_llm`` as her ``[llm]`` table."""
    for pack in ("orla", "xiaoman"):
        shutil.copytree(SHIPPED / pack, root / pack)
    with (root / "orla" / "character.toml").open("a", encoding="utf-8") as toml:
        toml.write(f"\n[llm]\n{orla_llm}")
    return root


def bot_config(tmp_path: Path, characters: Path, server: FakeOpenAIServer) -> BotConfig:
    return parse_config(
        {
            "characters": {"dir": str(characters), "default": "orla"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "llm": {
                "backend": "openai",
                "base_url": server.base_url,
                "model": "bot-model",
                "timeout_s": 5,
                "max_retries": 0,
            },
        },
        source=tmp_path / "bot.toml",
    )


@pytest.fixture
def config(tmp_path: Path, bot_server: FakeOpenAIServer, pack_server: FakeOpenAIServer) -> BotConfig:
    characters = shipped_packs(
        tmp_path / "characters", f'model = "pack-model"\nbase_url = "{pack_server.base_url}"\n'
    )
    return bot_config(tmp_path, characters, bot_server)


def test_models_lists_bot_pack_and_endpoints() -> None:
    assert parse_models("bot, pack,ds=https://api.x/v1@chat") == [
        BOT,
        PACK,
        Endpoint("ds", "https://api.x/v1", "chat"),
    ]
    with pytest.raises(ConfigError, match=r"--models .*got 'mine'"):
        parse_models("bot,mine")


async def test_the_bot_s_model_and_the_pack_s_own_are_compared(
    config: BotConfig, bot_server: FakeOpenAIServer, pack_server: FakeOpenAIServer
) -> None:
    options = EvalOptions(
        models=[BOT, PACK],
        judge=Endpoint("judge", bot_server.base_url, "judge"),
        runs=2,
        questions=2,
        prices={"bot": Price(1, 2), "pack": Price(0, 0)},
    )
    result = await run_eval(config, options)

    bot, pack = result.models
    assert (bot.model, pack.model) == ("bot (bot-model)", "pack (pack-model)")
    assert {answer.pack for answer in bot.answers} == {"orla", "xiaoman"}
    assert {answer.pack for answer in pack.answers} == {"orla"}, "xiaoman has no [llm]: left out"
    assert len(bot.answers) == 8, "2 questions, 2 runs, per pack"
    assert len(pack.answers) == 4

    answering = [request.model for request in bot_server.requests if request.model != "judge"]
    judging = [request for request in bot_server.requests if request.model == "judge"]
    assert answering == ["bot-model"] * 8
    assert len(judging) == 12, "the judge scores both models' answers"
    assert [request.model for request in pack_server.requests] == ["pack-model"] * 4
    assert not pack_server.completion_requests

    assert bot.dimension("overall") == (4.0, 0.0)
    assert pack.dimension("tone") == (3.0, 1.0)
    assert pack.dimension("in_character") == (5.0, 0.0)
    assert pack.dimension("overall") == (3.75, 0.25)
    assert bot.cost is not None
    assert bot.cost > 0
    assert pack.cost == 0.0

    orla = next(loaded for loaded in load_packs(config.characters_dir).packs if loaded.id == "orla")
    for answer, request in zip(pack.answers, pack_server.requests, strict=True):
        scene = next(scene for scene in orla.scenes if scene.id == answer.scene)
        assert answer.scene_in_prompt == (scene.lines[-1].text in request.all_text())
        assert answer.scene_in_prompt or answer.scene_rank != 1
    assert pack.scene_in_prompt == sum(answer.scene_in_prompt for answer in pack.answers) / 4
    assert pack.for_pack("orla").scene_in_prompt == bot.for_pack("orla").scene_in_prompt, (
        "the same budgets: the same scenes in both prompts"
    )

    folder = result.report.parent
    assert (folder / "compare.png").stat().st_size > 0
    report = result.report.read_text(encoding="utf-8")
    assert "## Comparison" in report
    assert (
        "| model | in_character | consistency | tone | fluency | overall | scored | scene in prompt" in report
    )
    orla_section = report.split("### orla", 1)[1].split("###", 1)[0]
    assert (
        "| bot (bot-model) | 4.00 ± 0.00 | 4.00 ± 0.00 | 4.00 ± 0.00 | 4.00 ± 0.00 | 4.00 ± 0.00 | 4/4 |"
        in (orla_section)
    )
    assert (
        "| pack (pack-model) | 5.00 ± 0.00 | 3.00 ± 0.00 | 3.00 ± 1.00 | 4.00 ± 0.00 | 3.75 ± 0.25 | 4/4 |"
        in (orla_section)
    )
    assert (
        "Overall, bot (bot-model) (4.00 ± 0.00, n=4) is ahead of pack (pack-model) (3.75 ± 0.25, n=4) "
        "by 0.25." in orla_section
    )
    xiaoman_section = report.split("### xiaoman", 1)[1].split("###", 1)[0]
    assert "| pack (pack-model) |" not in xiaoman_section
    assert "Fewer than two models" in xiaoman_section
    assert "### all packs" not in report, "the pack row has no xiaoman: no mean over both packs"
    assert "xiaoman has no [llm] in character.toml" in report

    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    first = results["models"][1]["answers"][0]
    assert isinstance(first["scene_in_prompt"], bool)
    assert "scene_rank" in first
    assert results["models"][1]["scene_in_prompt"] == pack.scene_in_prompt
    rows = results["comparison"]["orla"]
    assert [row["model"] for row in rows] == ["bot (bot-model)", "pack (pack-model)"]
    assert rows[1]["dimensions"]["tone"] == [3.0, 1.0]


async def test_a_completion_style_pack_model_answers_through_completions(
    tmp_path: Path, bot_server: FakeOpenAIServer, pack_server: FakeOpenAIServer
) -> None:
    characters = shipped_packs(
        tmp_path / "characters",
        f'model = "pack-model"\nbase_url = "{pack_server.base_url}"\nstyle = "completion"\n',
    )
    config = bot_config(tmp_path, characters, bot_server)
    options = EvalOptions(
        packs=["orla"],
        models=[PACK],
        judge=Endpoint("judge", bot_server.base_url, "judge"),
        runs=2,
        questions=2,
    )
    result = await run_eval(config, options)

    (pack,) = result.models
    assert pack.model == "pack (pack-model)"
    assert len(pack_server.completion_requests) == 4
    assert not pack_server.requests, "never the chat endpoint"
    assert [request.model for request in bot_server.requests] == ["judge"] * 4, (
        "the bot's model never answers"
    )
    assert all(answer.text.startswith("[pack-model] reply") for answer in pack.answers)
    assert pack.dimension("in_character") == (5.0, 0.0)
    assert "## Comparison" not in result.report.read_text(encoding="utf-8"), "one model: nothing to compare"


async def test_a_failing_pack_model_is_measured_failing_not_replaced_by_the_bot_s(
    config: BotConfig, bot_server: FakeOpenAIServer, pack_server: FakeOpenAIServer
) -> None:
    pack_server.fail_next(500, times=2)
    options = EvalOptions(
        packs=["orla"],
        models=[PACK],
        judge=Endpoint("judge", bot_server.base_url, "judge"),
        runs=1,
        questions=2,
    )
    result = await run_eval(config, options)

    (pack,) = result.models
    assert [answer.judged for answer in pack.answers] == ["(the model gave no answer)"] * 2
    assert pack.summary().endswith("0/2 scored")
    assert not bot_server.requests, "the fallback to the bot's model stays off in a comparison"


async def test_pack_without_any_pack_model_is_refused(tmp_path: Path, bot_server: FakeOpenAIServer) -> None:
    root = tmp_path / "characters"
    folder = write_pack(root)
    (folder / "eval").mkdir()
    (folder / "eval" / "questions.yaml").write_text(
        "questions:\n  - q: Storm?\n    scene: '001'\n", encoding="utf-8"
    )
    config = bot_config(tmp_path, root, bot_server)
    with pytest.raises(
        ConfigError, match=r"--models pack: none of the chosen characters \(orla\) has its own model"
    ):
        await run_eval(config, EvalOptions(models=[BOT, PACK], runs=1))
    assert not bot_server.requests, "refused before any answer"


def test_the_command_prints_the_comparison(
    config: BotConfig,
    bot_server: FakeOpenAIServer,
    pack_server: FakeOpenAIServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    toml = tmp_path / "eval.toml"
    toml.write_text(
        f'[characters]\ndir = "{config.characters_dir.as_posix()}"\ndefault = "orla"\n'
        f'[storage]\ndata_dir = "{config.data_dir.as_posix()}"\n'
        f'[llm]\nbackend = "openai"\nbase_url = "{bot_server.base_url}"\nmodel = "bot-model"\n'
        "timeout_s = 5\nmax_retries = 0\n",
        encoding="utf-8",
    )
    models = f"bot,mini={pack_server.base_url}@mini-model"
    argv = ["--config", str(toml), "eval", "--models", models, "--runs", "1", "--questions", "1"]
    assert main([*argv, "--judge", f"{bot_server.base_url}@judge", "--price", "mini=1/1"]) == 0

    out = capsys.readouterr().out
    assert [request.model for request in pack_server.requests] == ["mini-model"] * 2, "orla, xiaoman"
    orla = out.split("### orla", 1)[1].split("###", 1)[0]
    assert "| mini | 5.00 ± 0.00 | 3.00 ± 0.00 | 4.00 ± 0.00 | 4.00 ± 0.00 | 4.00 ± 0.00 | 1/1 |" in orla
    assert "Overall, bot (bot-model) (4.00 ± 0.00, n=1) is level with mini (4.00 ± 0.00, n=1)." in orla
    both = out.split("### all packs", 1)[1]
    assert "| mini | 5.00 ± 0.00 | 3.00 ± 0.00 | 3.00 ± 1.00 | 4.00 ± 0.00 | 3.75 ± 0.25 | 2/2 |" in both
    assert "Overall, bot (bot-model) (4.00 ± 0.00, n=2) is ahead of mini (3.75 ± 0.25, n=2) by 0.25." in both
