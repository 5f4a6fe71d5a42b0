"""Voices with replies: ``/voice`` modes, translation before speech, the character's own lines.

The chat model and the speech engine are one real OpenAI-compatible HTTP server
(:class:`~tests.support.openai_server.FakeOpenAIServer`); its speech is a real WAV, encoded to MP3 by
ffmpeg like any voice, and decoded back here.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import BotConfig, parse_config
from bot.engine.model import OpenAIChatModel
from bot.engine.packs import load_pack
from bot.flow.cooldown import ChatCooldown
from bot.flow.speak import TRANSLATE, Speaker, spoken_part
from bot.messages import ChatKey, Reply, Role
from bot.router import Router
from bot.voice.engines import Engines
from storage import Repository
from tests.messages import group_message
from tests.packs import ORLA_CAPTIONS, write_pack, write_xiaoman
from tests.support.bot_process import free_port
from tests.support.openai_server import FakeOpenAIServer, speech_duration_s

ADMIN = Role.ADMIN
CLIP_LINE = ORLA_CAPTIONS[1]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(server: FakeOpenAIServer) -> None:
    server.clear()


def tone(path: Path, seconds: float) -> Path:
    """A real Ogg/Opus recording: a tone ``seconds`` long."""
    from bot.ffmpeg import find_ffmpeg

    exe = find_ffmpeg()
    assert exe is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, "-loglevel", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:a", "libopus", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def decoded_seconds(path: Path) -> float:
    """The duration ffmpeg decodes from ``path`` (16 kHz mono samples counted)."""
    from bot.ffmpeg import find_ffmpeg

    exe = find_ffmpeg()
    assert exe is not None
    pcm = subprocess.run(
        [exe, "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return len(pcm) / 2 / 16000


@pytest.fixture
def config(tmp_path: Path, server: FakeOpenAIServer) -> BotConfig:
    """Orla speaks Japanese through a translation and has one recorded line; Xiaoman speaks as she
    writes. Both through the speech server; no cooldown between voices unless a test sets one."""
    characters = tmp_path / "characters"
    orla = write_pack(
        characters,
        screenshots=ORLA_CAPTIONS,
        extra_toml='[voice]\ntranslate_to = "ja"\nvoice = "nova"\n',
    )
    tone(orla / "voices" / "0001.ogg", 1.2)
    clip = {"audio": "voices/0001.ogg", "text": CLIP_LINE, "scene": "002"}
    (orla / "voices.jsonl").write_text(json.dumps(clip) + "\n", encoding="utf-8")
    write_xiaoman(characters)
    return parse_config(
        {
            "admins": {"superusers": ["onebot:1"]},
            "voice": {
                "cooldown_s": 0,
                "openai": {"base_url": server.base_url, "timeout_s": 5, "price_per_million_chars": 15},
            },
        },
        source=tmp_path / "bot.toml",
    )


@pytest.fixture
async def model(server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    model = OpenAIChatModel(model="fake-model", base_url=server.base_url, api_key="x", timeout_s=5)
    yield model
    await model.aclose()


@pytest.fixture
def speaker(router: Router) -> Speaker:
    return router.speaker


def translating(server: FakeOpenAIServer, translation: str, reply: str = "Orla: The lamp is lit.") -> None:
    """The model translates with ``translation`` and answers everything else with ``reply``."""

    def answer(body: dict[str, object]) -> str:
        return translation if "Translate" in json.dumps(body) else reply

    server.reply_with(answer)


async def test_a_translated_voice_speaks_the_translation_and_the_chat_pays_for_it(
    router: Router, speaker: Speaker, server: FakeOpenAIServer, repository: Repository
) -> None:
    translating(server, "灯台の灯りはついています。")
    orla = router.packs.get("orla")
    assert orla is not None
    incoming = group_message("Is the lamp lit?", to_me=True)
    spoken = await speaker.voice_of(incoming, orla, "The lamp is lit.")

    assert spoken is not None
    assert not spoken.voice.recorded
    translation = next(r for r in server.requests if "Translate" in r.all_text())
    assert TRANSLATE.format(language="Japanese") in translation.system_text()
    assert "The lamp is lit." in translation.last_user_text()
    (speech,) = server.speech_requests
    assert (speech.input, speech.voice) == ("灯台の灯りはついています。", "nova")
    assert spoken.text == "灯台の灯りはついています。"
    assert spoken.voice.path.suffix == ".mp3"
    expected = speech_duration_s(spoken.text)
    assert abs(decoded_seconds(spoken.voice.path) - expected) < 0.15

    rows = await repository.usage.rows("0000-00-00", "9999-99-99", incoming.key)
    assert any(row.model == "fake-model" and row.tokens for row in rows), "the translation's tokens count"
    (voice_row,) = [row for row in rows if row.model.startswith("speech:")]
    assert voice_row.voice_chars == len(spoken.text)
    assert abs(voice_row.voice_ms / 1000 - expected) < 0.05

    (usage,) = await router.handle(group_message("/usage", role=ADMIN))
    chars = len(spoken.text)
    assert (
        f"Voice today: {chars} characters spoken, {expected:.0f} s of voice (${chars * 15 / 1e6:.4f})"
        in usage.text
    )

    again = await speaker.voice_of(incoming, orla, "The lamp is lit.")
    assert again is not None
    assert again.voice.path == spoken.voice.path
    assert len(server.speech_requests) == 1, "the same words in the same voice come from the cache"


async def test_a_reply_that_says_a_recorded_line_again_gets_the_recording(
    router: Router, speaker: Speaker, server: FakeOpenAIServer
) -> None:
    translating(server, "猫には好みがある。")
    orla = router.packs.get("orla")
    assert orla is not None
    assert len(orla.voices) == 1
    incoming = group_message("Your cat ate my fish!", to_me=True)

    spoken = await speaker.voice_of(incoming, orla, f"Ha. {CLIP_LINE}")
    assert spoken is not None
    assert spoken.voice.recorded
    assert spoken.voice.path == orla.voices[0].path
    assert spoken.text == CLIP_LINE
    assert server.speech_requests == [], "nothing synthesised"
    assert server.requests == [], "nothing translated"

    cooled = await speaker.voice_of(incoming, orla, f"Ha. {CLIP_LINE}")
    assert cooled is not None
    assert not cooled.voice.recorded, "one recorded line a minute per chat"
    assert len(server.speech_requests) == 1

    other = await speaker.voice_of(group_message("hi", group="999"), orla, "The storm is close.")
    assert other is not None
    assert not other.voice.recorded, "no recorded line says that"


async def test_voice_on_posts_the_voice_after_the_text_and_off_stops_it(
    router: Router, speaker: Speaker, server: FakeOpenAIServer, announced: list[tuple[ChatKey, Reply]]
) -> None:
    translating(server, "はい。")
    refused = await router.handle(group_message("/voice on"))
    assert refused[0].text == "/voice is for group admins only."
    (said,) = await router.handle(group_message("/voice on", role=ADMIN))
    assert said.text.startswith("Voice on: replies come as text, then as a voice message.")
    assert "Orla Finch speaks Japanese (openai, voice nova), a translation of what it writes" in said.text

    (reply,) = await router.handle(group_message("Is the lamp lit?", to_me=True))
    assert reply.voice is None
    assert reply.settled is not None
    await router.ledger.settle([reply], "posted")
    await speaker.join()
    ((key, follow),) = announced
    assert key == ChatKey("onebot", "100")
    assert follow.voice is not None
    assert follow.voice_only
    assert follow.text == "はい。"
    assert follow.delivery_id is not None, "the voice is recorded like every reply"
    assert decoded_seconds(follow.voice.path) > 0.2

    await router.handle(group_message("/voice off", role=ADMIN))
    announced.clear()
    (plain,) = await router.handle(group_message("And the boat?", to_me=True))
    await speaker.join()
    assert plain.settled is None
    assert announced == []


async def test_voice_only_posts_the_voice_alone_and_keeps_the_text_in_the_record(
    router: Router, speaker: Speaker, server: FakeOpenAIServer, repository: Repository
) -> None:
    translating(server, "嵐が来る。")
    await router.handle(group_message("/voice only", role=ADMIN))
    (reply,) = await router.handle(group_message("Storm tonight?", to_me=True))
    assert reply.voice is not None
    assert reply.voice_only
    assert reply.text == "The lamp is lit.", "the text stays the character's line"
    history = await repository.messages.recent(ChatKey("onebot", "100"), "orla", limit=10)
    assert [m.text for m in history if m.role == "character"] == ["The lamp is lit."]


async def test_an_engine_that_is_down_leaves_the_text_reply_and_is_logged_once(
    router: Router, speaker: Speaker, caplog: pytest.LogCaptureFixture
) -> None:
    down = router.config.voice.openai.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    speaker.engines = Engines(router.config.voice.model_copy(update={"openai": down}), router.config.data_dir)
    await router.handle(group_message("/switch xiaoman"))
    await router.handle(group_message("/voice only", role=ADMIN))
    first = await router.handle(group_message("小满，在吗？", to_me=True))
    second = await router.handle(group_message("小满，吃了吗？", to_me=True))
    assert [reply.voice for reply in first + second] == [None, None]
    assert all(reply.text for reply in first + second)
    told = [r for r in caplog.records if "text only, no voice" in r.getMessage()]
    assert len(told) == 1, "one log line per chat and problem"


async def test_the_chat_voice_cooldown_spaces_voices(
    router: Router, speaker: Speaker, server: FakeOpenAIServer
) -> None:
    translating(server, "はい。")
    speaker.cooldown = ChatCooldown(60)
    await router.handle(group_message("/voice only", role=ADMIN))
    (first,) = await router.handle(group_message("One?", to_me=True))
    (second,) = await router.handle(group_message("Two?", to_me=True))
    assert first.voice is not None
    assert second.voice is None


def test_long_replies_are_spoken_in_their_first_sentences_or_not_at_all() -> None:
    text = "The storm is close. Tie the boat twice. Bring the lantern and the spare wick, Pip."
    assert spoken_part(text, 200, "first_sentences") == text
    assert spoken_part(text, 45, "first_sentences") == "The storm is close. Tie the boat twice."
    assert spoken_part(text, 45, "skip") == ""


async def test_a_pack_voice_table_is_validated_where_it_is_written(tmp_path: Path) -> None:
    from bot.errors import PackError

    write_pack(tmp_path, extra_toml='[voice]\nengine = "festival"\n')
    with pytest.raises(PackError, match=r"character.toml.*voice.*engine"):
        load_pack(tmp_path / "orla")
