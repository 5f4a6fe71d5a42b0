"""The OpenAI-compatible speech engine against a real local server (:mod:`tests.support.openai_server`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.config.voice import OpenAISpeechConfig
from bot.errors import SpeechError
from bot.ffmpeg import find_ffmpeg
from bot.voice.openai_speech import OpenAISpeech
from tests.support.bot_process import free_port
from tests.support.ffmpeg_audio import ffmpeg_decode
from tests.support.openai_server import FakeOpenAIServer, speech_duration_s, tone_wav

KEY_ENV = "TEST_SPEECH_API_KEY"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="tts-test", api_key="sk-voice") as started:
        yield started


@pytest.fixture
def speech_server(server: FakeOpenAIServer) -> FakeOpenAIServer:
    server.clear()
    return server


def make_config(server: FakeOpenAIServer, **overrides: object) -> OpenAISpeechConfig:
    settings: dict[str, object] = {
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "model": "tts-test",
        "voice": "nova",
        "timeout_s": 5.0,
    }
    settings.update(overrides)
    return OpenAISpeechConfig.model_validate(settings)


@pytest.fixture
async def engine(
    speech_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OpenAISpeech]:
    monkeypatch.setenv(KEY_ENV, "sk-voice")
    speech = OpenAISpeech(make_config(speech_server))
    yield speech
    await speech.aclose()


async def test_speaks_what_the_server_says(engine: OpenAISpeech, speech_server: FakeOpenAIServer) -> None:
    text = "今日はいい天気ですね、散歩しましょう。"

    speech = await engine.speak(text, voice="shimmer", speed=1.25)

    (request,) = speech_server.speech_requests
    assert request.path == "/v1/audio/speech"
    assert request.headers["authorization"] == "Bearer sk-voice"
    assert request.model == "tts-test"
    assert request.voice == "shimmer"
    assert request.input == text
    assert request.json["response_format"] == "wav"
    assert request.json["speed"] == 1.25
    assert speech.sample_rate == 24_000
    assert speech.duration_s == pytest.approx(speech_duration_s(text), abs=0.001)
    heard = ffmpeg_decode(speech.wav)
    assert heard.codec == "pcm_s16le"
    assert heard.duration_s == pytest.approx(speech_duration_s(text), abs=0.001)
    assert heard.rms > 0.15


async def test_a_pack_without_a_voice_gets_the_configured_one(
    engine: OpenAISpeech, speech_server: FakeOpenAIServer
) -> None:
    assert engine.default_voice("ja") == "nova"

    await engine.speak("hello", voice="", speed=1.0)

    assert speech_server.speech_requests[0].voice == "nova"


def test_identity_tells_server_model_voice_and_speed_apart(speech_server: FakeOpenAIServer) -> None:
    engine = OpenAISpeech(make_config(speech_server))
    identities = {
        engine.identity("nova", 1.0),
        engine.identity("", 1.0),
        engine.identity("alloy", 1.0),
        engine.identity("nova", 1.2),
        OpenAISpeech(make_config(speech_server, model="tts-2")).identity("nova", 1.0),
        OpenAISpeech(make_config(speech_server, base_url="http://127.0.0.1:1/v1")).identity("nova", 1.0),
    }
    assert len(identities) == 5  # "" is the configured voice, nova
    assert OpenAISpeech(OpenAISpeechConfig()).url == "https://api.openai.com/v1/audio/speech"


async def test_a_server_error_is_a_speech_error_naming_it(
    engine: OpenAISpeech, speech_server: FakeOpenAIServer
) -> None:
    speech_server.fail_next(500)

    with pytest.raises(SpeechError, match=r"HTTP 500\): injected failure 500"):
        await engine.speak("hello", voice="", speed=1.0)


async def test_a_wrong_key_is_a_speech_error_naming_it(
    speech_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    engine = OpenAISpeech(make_config(speech_server))
    try:
        with pytest.raises(SpeechError, match=r"HTTP 401\): Incorrect API key provided"):
            await engine.speak("hello", voice="", speed=1.0)
    finally:
        await engine.aclose()
    assert speech_server.speech_requests[0].headers["authorization"] == "Bearer sk-wrong"


async def test_no_key_sends_no_authorization(
    speech_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    engine = OpenAISpeech(make_config(speech_server))
    try:
        with pytest.raises(SpeechError, match="HTTP 401"):
            await engine.speak("hello", voice="", speed=1.0)
    finally:
        await engine.aclose()
    assert "authorization" not in speech_server.speech_requests[0].headers


async def test_a_slow_server_is_a_speech_error_after_the_timeout(
    speech_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-voice")
    speech_server.set_delay(3.0)
    engine = OpenAISpeech(make_config(speech_server, timeout_s=0.4))
    started = time.monotonic()
    try:
        with pytest.raises(SpeechError, match=r"did not answer within 0\.4 s"):
            await engine.speak("hello", voice="", speed=1.0)
    finally:
        await engine.aclose()
    assert time.monotonic() - started < 2.0


async def test_an_unreachable_server_is_a_speech_error() -> None:
    config = OpenAISpeechConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5.0)
    engine = OpenAISpeech(config)
    try:
        with pytest.raises(SpeechError, match="cannot reach the speech server"):
            await engine.speak("hello", voice="", speed=1.0)
    finally:
        await engine.aclose()


@pytest.fixture(scope="module")
def mp3_tone() -> bytes:
    """A second of the fake's tone as MP3, which some local speech servers send whatever is asked."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    return subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "wav",
            "-i",
            "pipe:0",
            "-c:a",
            "libmp3lame",
            "-f",
            "mp3",
            "pipe:1",
        ],
        input=tone_wav(1.0),
        capture_output=True,
        check=True,
    ).stdout


async def test_audio_in_another_format_is_decoded(
    engine: OpenAISpeech, speech_server: FakeOpenAIServer, mp3_tone: bytes
) -> None:
    speech_server.answer_next(mp3_tone, media_type="audio/mpeg")

    speech = await engine.speak("hello", voice="", speed=1.0)

    assert speech.wav[:4] == b"RIFF"
    heard = ffmpeg_decode(speech.wav)
    assert heard.sample_rate == speech.sample_rate == 24_000
    assert heard.duration_s == pytest.approx(1.0, abs=0.08)
    assert heard.rms > 0.15


async def test_a_body_that_is_not_audio_is_a_speech_error(
    engine: OpenAISpeech, speech_server: FakeOpenAIServer
) -> None:
    speech_server.answer_next("<html>proxy error</html>", media_type="text/html")

    with pytest.raises(SpeechError, match="decoding the speech audio: ffmpeg failed"):
        await engine.speak("hello", voice="", speed=1.0)


@pytest.mark.parametrize("claimed", [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"], ids=["unknown", "zero"])
async def test_a_streamed_wav_without_its_length_is_read_whole(
    engine: OpenAISpeech, speech_server: FakeOpenAIServer, claimed: bytes
) -> None:
    streamed = bytearray(tone_wav(1.5))
    assert streamed[36:40] == b"data"
    streamed[4:8] = streamed[40:44] = claimed
    speech_server.answer_next(bytes(streamed), media_type="audio/wav")

    speech = await engine.speak("hello", voice="", speed=1.0)

    heard = ffmpeg_decode(speech.wav)
    assert heard.duration_s == pytest.approx(1.5, abs=0.01)
    assert heard.rms > 0.15


async def test_nothing_to_say_is_refused_by_the_server(engine: OpenAISpeech) -> None:
    with pytest.raises(SpeechError, match=r"HTTP 400\): 'input' must be a non-empty string"):
        await engine.speak("", voice="", speed=1.0)


def test_without_a_key_or_a_server_the_engine_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert OpenAISpeech(OpenAISpeechConfig()).missing() == (
        "OpenAI's speech API needs a key in $OPENAI_API_KEY (or set [voice.openai] base_url)"
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert OpenAISpeech(OpenAISpeechConfig()).missing() is None
    assert (
        OpenAISpeech(OpenAISpeechConfig(base_url="http://127.0.0.1:9880/v1", api_key_env="NONE")).missing()
        is None
    )
