"""WAV in, what chats get out: :mod:`bot.voice.audio`, checked by decoding with ffmpeg."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bot.errors import SpeechError
from bot.ffmpeg import find_ffmpeg
from bot.voice import audio
from bot.voice.audio import Encoder, VoiceCache, decode, read_wav, speech_from_pcm
from tests.support.ffmpeg_audio import ffmpeg_decode


def tone(duration_s: float, sample_rate: int = 24_000, amplitude: float = 0.5) -> np.ndarray:
    seconds = np.arange(round(duration_s * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * 330 * seconds)).astype(np.float32)


def test_float_samples_become_a_16_bit_wav_ffmpeg_reads() -> None:
    speech = speech_from_pcm(tone(1.5), 24_000)

    assert speech.sample_rate == 24_000
    assert speech.duration_s == pytest.approx(1.5)
    heard = ffmpeg_decode(speech.wav)
    assert heard.codec == "pcm_s16le"
    assert heard.sample_rate == 24_000
    assert heard.duration_s == pytest.approx(1.5, abs=0.001)
    assert heard.rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_int16_samples_round_trip_and_floats_are_clipped() -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    back, rate = read_wav(speech_from_pcm(samples, 22_050).wav)
    assert rate == 22_050
    assert back.tolist() == samples.tolist()

    clipped, _ = read_wav(speech_from_pcm(np.array([2.0, -2.0, 0.5], dtype=np.float32), 16_000).wav)
    assert clipped.tolist() == [32767, -32767, 16383]


def test_read_wav_refuses_what_is_not_16_bit_pcm_wav() -> None:
    with pytest.raises(SpeechError, match="not a 16-bit PCM WAV"):
        read_wav(b"ID3\x04 this is an mp3, honestly")


@pytest.mark.parametrize(("fmt", "suffix", "codec"), [("mp3", ".mp3", "mp3"), ("opus", ".ogg", "opus")])
@pytest.mark.parametrize("sample_rate", [24_000, 22_050])
def test_encoded_voices_decode_to_the_same_length(
    fmt: str, suffix: str, codec: str, sample_rate: int
) -> None:
    speech = speech_from_pcm(tone(2.0, sample_rate), sample_rate)

    data, got_suffix = Encoder().encode(speech, fmt)  # type: ignore[arg-type]

    assert got_suffix == suffix
    assert len(data) < len(speech.wav) / 4
    heard = ffmpeg_decode(data)
    assert heard.codec == codec
    assert heard.duration_s == pytest.approx(2.0, abs=0.08)
    assert heard.rms == pytest.approx(0.5 / np.sqrt(2), rel=0.15)


def test_wav_is_sent_as_it_is() -> None:
    speech = speech_from_pcm(tone(0.5), 24_000)
    assert Encoder().encode(speech, "wav") == (speech.wav, ".wav")


def test_without_ffmpeg_voices_go_out_as_wav_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(audio, "find_ffmpeg", lambda: None)
    speech = speech_from_pcm(tone(0.5), 24_000)
    encoder = Encoder()

    with caplog.at_level(logging.WARNING, logger="bot.voice.audio"):
        first = encoder.encode(speech, "mp3")
        second = encoder.encode(speech, "opus")

    assert first == second == (speech.wav, ".wav")
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "no ffmpeg" in warnings[0]


def test_ffmpeg_failing_is_a_speech_error() -> None:
    broken = speech_from_pcm(tone(0.5), 24_000)
    garbage = type(broken)(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(64), 24_000, 0.5)
    with pytest.raises(SpeechError, match="encoding a voice as mp3: ffmpeg failed"):
        Encoder().encode(garbage, "mp3")


def test_decode_reads_mp3_into_a_24khz_wav() -> None:
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    wav = speech_from_pcm(tone(1.0, 44_100), 44_100).wav
    mp3 = subprocess.run(
        [ffmpeg, "-loglevel", "error", "-f", "wav", "-i", "pipe:0", "-f", "mp3", "pipe:1"],
        input=wav,
        capture_output=True,
        check=True,
    ).stdout

    speech = decode(mp3)

    assert speech.sample_rate == 24_000
    heard = ffmpeg_decode(speech.wav)
    assert heard.sample_rate == 24_000
    assert heard.duration_s == pytest.approx(1.0, abs=0.08)
    assert heard.rms > 0.25


def test_cache_keys_tell_voices_texts_and_formats_apart() -> None:
    key = VoiceCache.key("kokoro|jf_alpha|1", "こんにちは", "mp3")
    assert len(key) == 64
    assert key == VoiceCache.key("kokoro|jf_alpha|1", "こんにちは", "mp3")
    others = {
        VoiceCache.key("kokoro|jm_kumo|1", "こんにちは", "mp3"),
        VoiceCache.key("kokoro|jf_alpha|1", "こんばんは", "mp3"),
        VoiceCache.key("kokoro|jf_alpha|1", "こんにちは", "opus"),
    }
    assert key not in others
    assert len(others) == 3


def test_cache_stores_and_finds_a_voice(tmp_path: Path) -> None:
    cache = VoiceCache(tmp_path / "voice", cap_bytes=10_000)
    key = VoiceCache.key("espeak|cmn|1", "你好", "opus")
    assert cache.get(key) is None

    stored = cache.put(key, b"OggS voice", ".ogg")

    assert stored == tmp_path / "voice" / f"{key}.ogg"
    assert cache.get(key) == stored
    assert stored.read_bytes() == b"OggS voice"
    assert stored.stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in (tmp_path / "voice").iterdir()) == [stored.name]


def test_cache_prunes_to_its_cap_least_recently_used_first(tmp_path: Path) -> None:
    cache = VoiceCache(tmp_path, cap_bytes=250)
    paths = {}
    for age, name in enumerate("abc"):
        paths[name] = cache.put(name * 64, bytes(100), ".mp3")
        os.utime(paths[name], (1_000_000 + age, 1_000_000 + age))

    assert not paths["a"].exists()
    assert cache.get("a" * 64) is None
    assert paths["b"].exists()
    assert paths["c"].exists()

    assert cache.get("b" * 64) == paths["b"]
    paths["d"] = cache.put("d" * 64, bytes(100), ".mp3")

    assert sorted(path.name[0] for path in tmp_path.iterdir()) == ["b", "d"]


def test_a_cache_capped_at_zero_keeps_only_the_voice_being_sent(tmp_path: Path) -> None:
    cache = VoiceCache(tmp_path, cap_bytes=0)
    first = cache.put("1" * 64, b"first", ".mp3")
    assert first.read_bytes() == b"first"

    second = cache.put("2" * 64, b"second", ".mp3")

    assert second.read_bytes() == b"second"
    assert list(tmp_path.iterdir()) == [second]
