"""The offline local model: Gemma 3 270M from the packaged GGUF, converted once, cached, and run.

One real model is loaded (converted from the GGUF into a temporary data dir) and shared by the
module; a second one loads from the cache that conversion left. Prompts are short so that each
reply takes a second or two on a CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from bot.config import LLMConfig
from bot.engine import local_model, local_weights
from bot.engine.backends import create_chat_model
from bot.engine.local_model import LineCutter, LocalChatModel, render_script
from bot.engine.packs import Scene, parse_scene
from bot.engine.prompt import Prompt, PromptTokens, Turn
from bot.errors import ModelError, ModelTimeout

MAX_NEW_TOKENS = 60


def scene(text: str) -> Scene:
    return parse_scene(Path("scene.txt"), text)


def orla_prompt(message: str = "Do you ever get lonely out here, Orla?", *, history: int = 2) -> Prompt:
    turns = [
        Turn("Pip", "Morning Orla! The ferry is cancelled again."),
        Turn("Orla Finch", "Northway Ferries couldn't run a bath. Come in, the kettle's on.", True),
    ]
    return Prompt(
        character="Orla Finch",
        language="en",
        persona=(
            "You are Orla Finch, keeper of Skerrow Light, a lighthouse on a windy northern island. "
            "Dry humour, short weathered sentences. Your grey cat Barnacle steals kippers."
        ),
        scenes=[
            scene(
                "Tam:「Orla, the glass is dropping like a stone. Mind if I wait it out here?」\n"
                "Orla:「Glass has been dropping since Tuesday. You just noticed because it's your boat.」\n"
                "Tam:「Is that a yes?」\n"
                "Orla:「It's a yes. Boots off at the door. Barnacle bites wet socks.」"
            ),
            scene(
                "Ines:「You remember every ship, don't you?」\n"
                "Orla:「Not every one. Just the ones that nearly didn't.」"
            ),
        ],
        history=turns[:history],
        message=Turn("Tom", message),
        tokens=PromptTokens(40, 90, 30, 12),
    )


def xiaoman_prompt() -> Prompt:
    return Prompt(
        character="苏小满",
        language="zh",
        persona="你是苏小满，槐荫巷“半盏茶馆”的年轻掌柜，嘴快心热，懂茶，最烦别人催。",
        scenes=[
            scene(
                "老周:「小满，老规矩。」\n苏小满:「龙井一壶，水要八十五度。周老师，您这规矩比教育局的文件还多。」"
            ),
            scene("阿杰:「小满姐，来杯冰的，赶时间！」\n苏小满:「茶催不得。坐下，给你泡壶茉莉，三分钟。」"),
        ],
        history=[Turn("林医生", "小满，我刚下夜班。")],
        message=Turn("老周", "小满，今天下雨，来壶什么茶好？"),
        tokens=PromptTokens(30, 80, 10, 15),
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def model(data_dir: Path) -> Iterator[LocalChatModel]:
    """The packaged model, converted from its GGUF (the first-start path), loaded once per module."""
    chat_model = LocalChatModel("gemma3-270m", data_dir, max_new_tokens=MAX_NEW_TOKENS, timeout_s=60)

    async def load_twice_at_once() -> None:
        await asyncio.gather(chat_model.warm_up(), chat_model.warm_up())

    asyncio.run(load_twice_at_once())
    yield chat_model
    asyncio.run(chat_model.aclose())


def assert_one_line(text: str, prompt: Prompt) -> None:
    assert text
    assert text == text.strip()
    assert "\n" not in text
    assert "」" not in text
    assert not text.startswith("「")
    for speaker in (prompt.character, "Orla", prompt.message.speaker):
        assert not text.startswith((f"{speaker}:", f"{speaker}："))


def test_first_load_converts_the_packaged_gguf_and_caches_it(model: LocalChatModel, data_dir: Path) -> None:
    info = model.load_info
    assert info is not None
    assert info.via == "gguf"
    assert info.cached
    assert info.cache_dir.parent == data_dir / "models"
    assert info.cache_dir.name.startswith("gemma3-270m-")
    assert (info.cache_dir / "model.safetensors").is_file()
    assert (info.cache_dir / "tokenizer.json").is_file()
    assert (data_dir / "models" / "gemma-3-270m-q4_k_m.gguf").is_file()
    assert not [path for path in (data_dir / "models").iterdir() if path.name.startswith(".")]


async def test_answers_an_english_prompt_with_one_line(model: LocalChatModel) -> None:
    torch.manual_seed(1)
    prompt = orla_prompt()
    completion = await model.complete(prompt)
    assert_one_line(completion.text, prompt)
    assert completion.model == "gemma3-270m (local)"
    assert (completion.prompt_tokens or 0) > 50
    assert 0 < (completion.completion_tokens or 0) < MAX_NEW_TOKENS


async def test_answers_a_chinese_prompt_with_one_line(model: LocalChatModel) -> None:
    torch.manual_seed(2)
    prompt = xiaoman_prompt()
    completion = await model.complete(prompt)
    assert_one_line(completion.text, prompt)
    assert any("\u4e00" <= char <= "\u9fff" for char in completion.text)
    assert 0 < (completion.completion_tokens or 0) < MAX_NEW_TOKENS


async def test_a_long_prompt_is_cut_from_the_start(
    model: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "context_tokens", 160)
    prompt = orla_prompt()
    prompt.history = [Turn("Pip", f"Line {number}: the fog is thick tonight.") for number in range(40)]
    torch.manual_seed(3)
    completion = await model.complete(prompt)
    assert completion.prompt_tokens is not None
    assert completion.prompt_tokens <= 160
    assert_one_line(completion.text, prompt)


async def test_generation_stops_at_the_time_limit(
    model: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "timeout_s", 0.01)
    torch.manual_seed(4)
    started = time.monotonic()
    try:
        completion = await model.complete(orla_prompt())
    except ModelTimeout:
        pass
    else:
        assert completion.completion_tokens is not None
        assert completion.completion_tokens <= 2
    assert time.monotonic() - started < 10


async def test_a_cancelled_reply_frees_the_model(model: LocalChatModel) -> None:
    task = asyncio.create_task(model.complete(orla_prompt()))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    torch.manual_seed(5)
    completion = await asyncio.wait_for(model.complete(orla_prompt("Tea or coffee?")), timeout=30)
    assert completion.text


async def test_a_second_model_loads_from_the_cache_once(
    model: LocalChatModel, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_conversion(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cached conversion should have been used")

    monkeypatch.setattr(local_weights, "convert", no_conversion)
    config = LLMConfig(backend="local", max_tokens=MAX_NEW_TOKENS)
    second = create_chat_model(config, data_dir)
    assert isinstance(second, LocalChatModel)
    loads = 0
    real_load: Callable[[], Any] = second._load

    def counting_load() -> Any:
        nonlocal loads
        loads += 1
        return real_load()

    monkeypatch.setattr(second, "_load", counting_load)
    torch.manual_seed(6)
    english, chinese = await asyncio.gather(second.complete(orla_prompt()), second.complete(xiaoman_prompt()))
    await second.aclose()

    assert loads == 1
    assert second.load_info is not None
    assert second.load_info.via == "cache"
    assert model.load_info is not None
    assert second.load_info.cache_dir == model.load_info.cache_dir
    assert second.load_info.cache_dir.is_dir()
    assert_one_line(english.text, orla_prompt())
    assert_one_line(chinese.text, xiaoman_prompt())


async def test_a_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    chat_model = LocalChatModel(str(missing), tmp_path / "data")
    with pytest.raises(ModelError, match=r"local_model: cannot read .*model\.gguf"):
        await chat_model.complete(orla_prompt())
    with pytest.raises(ModelError, match="cannot read"):
        await chat_model.warm_up()
    await chat_model.aclose()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a model\n", "is not a GGUF model file"),
        (b"GGUF\x03\x00\x00\x00" + b"\x00" * 40, "cannot load the local model"),
    ],
    ids=["not-gguf", "truncated-gguf"],
)
async def test_a_corrupt_model_file_is_a_model_error(tmp_path: Path, content: bytes, message: str) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(content)
    chat_model = LocalChatModel(str(broken), tmp_path / "data")
    with pytest.raises(ModelError, match=message):
        await chat_model.warm_up()
    await chat_model.aclose()
    leftovers = list((tmp_path / "data").rglob("*")) if (tmp_path / "data").exists() else []
    assert not [path for path in leftovers if path.is_file()]


async def test_a_truncated_gguf_is_a_model_error(data_dir: Path, tmp_path: Path) -> None:
    packaged = data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
    truncated = tmp_path / "truncated.gguf"
    with packaged.open("rb") as source:
        truncated.write_bytes(source.read(64 * 1024))
    chat_model = LocalChatModel(str(truncated), tmp_path / "data")
    with pytest.raises(ModelError, match=r"cannot load the local model .*truncated\.gguf"):
        await chat_model.warm_up()
    await chat_model.aclose()


def test_english_is_a_plain_script_under_the_scene_name() -> None:
    script = render_script(orla_prompt())
    assert script.label == "Orla"
    assert not script.quoted
    assert script.text.endswith("\nTom: Do you ever get lonely out here, Orla?\nOrla:")
    assert "\nOrla: It's a yes. Boots off at the door. Barnacle bites wet socks.\n" in script.text
    assert "\nOrla: Northway Ferries couldn't run a bath." in script.text
    assert "「" not in script.text


def test_chinese_keeps_the_scene_quotes() -> None:
    script = render_script(xiaoman_prompt())
    assert script.label == "苏小满"
    assert script.quoted
    assert script.text.endswith("\n老周:「小满，今天下雨，来壶什么茶好？」\n苏小满:「")
    assert {"老周", "阿杰", "林医生", "苏小满"} <= set(script.speakers)


@pytest.mark.parametrize(
    ("continuation", "line"),
    [
        ("It's a yes.」\nTam:「Good.」", "It's a yes."),
        (" Aye, now and then.\nTom: Really?", "Aye, now and then."),
        (" Aye. Tom: really? Orla: yes", "Aye."),
        ("茶催不得。老周：那我等着。", "茶催不得。"),
        ("好。阿杰:「走了」", "好。"),
        ("Orla: Only on Sundays.\n", "Only on Sundays."),
        (" Maybe soup.</blockquote>", "Maybe soup."),
        ("「龙井。", "龙井。"),
    ],
)
def test_the_line_ends_where_the_character_stops_speaking(continuation: str, line: str) -> None:
    cutter = LineCutter(render_script(orla_prompt() if continuation.isascii() else xiaoman_prompt()))
    assert cutter.cut(continuation) == line


def test_loading_is_lazy_and_needs_no_running_model() -> None:
    chat_model = LocalChatModel.from_config(LLMConfig(max_tokens=4096, temperature=0.3), Path("unused"))
    assert chat_model.load_info is None
    assert chat_model.max_new_tokens == local_model.MAX_NEW_TOKENS
    assert chat_model.temperature == 0.3
    assert chat_model.name == "gemma3-270m (local)"
    asyncio.run(chat_model.aclose())
