"""Audio after the engine: samples to WAV, WAV to what chats get, and the cache under ``data/voice/``.

Every engine hands back a 16-bit mono WAV (:class:`~bot.voice.speech.Speech`); this module is the one
place that builds one from samples, reads one back, re-encodes it with ffmpeg (MP3 or Opus in Ogg,
what chat platforms play as a voice message) and keeps the results on disk by what was said, by whom.

ffmpeg runs as a child process fed through its stdin and read from its stdout, with a timeout; all of
it blocks, so callers on the event loop run it in a thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from bot.errors import SpeechError
from bot.ffmpeg import find_ffmpeg, last_line, run_ffmpeg
from bot.voice.speech import Speech

log = logging.getLogger(__name__)

AudioFormat = Literal["mp3", "opus", "wav"]

SUFFIXES: dict[AudioFormat, str] = {"mp3": ".mp3", "opus": ".ogg", "wav": ".wav"}
"""The file suffix of each format chats can get."""

_CODEC_ARGS: dict[AudioFormat, tuple[str, ...]] = {
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"),
    # NOTE: libopus takes 8/12/16/24/48 kHz only; espeak-ng speaks at 22.05 kHz, so resample always.
    "opus": ("-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-ar", "48000", "-f", "ogg"),
}

DECODE_RATE = 24_000
"""The sample rate :func:`decode` resamples foreign audio to (that of most speech models)."""


def speech_from_pcm(samples: np.ndarray, sample_rate: int) -> Speech:
    """A :class:`Speech` holding ``samples``: floats in [-1, 1] (clipped) or 16-bit integers, mono."""
    if samples.dtype == np.int16:
        pcm = samples.reshape(-1)
    else:
        pcm = (np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return Speech(buffer.getvalue(), sample_rate, len(pcm) / sample_rate)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """The samples (16-bit, mono: channels are averaged) and sample rate of a 16-bit PCM WAV.

    Anything else (another container, float or 24-bit samples) is a :class:`SpeechError`.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            channels, width, rate = source.getnchannels(), source.getsampwidth(), source.getframerate()
            frames = source.readframes(source.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SpeechError(f"the audio is not a 16-bit PCM WAV file ({exc})") from None
    if width != 2:
        raise SpeechError(f"the WAV audio has {8 * width}-bit samples; 16-bit was expected")
    usable = len(frames) - len(frames) % (2 * channels)
    samples = np.frombuffer(frames[:usable], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).round()
    return samples.astype(np.int16), rate


def is_wav(data: bytes) -> bool:
    """Whether ``data`` starts like a RIFF/WAVE file."""
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _run_ffmpeg(args: Sequence[str], data: bytes, timeout_s: float, what: str) -> bytes:
    """What ffmpeg writes to stdout for ``data`` on its stdin; :class:`SpeechError` when it fails."""
    done = run_ffmpeg(
        ["-loglevel", "error", *args],
        timeout_s=timeout_s,
        what=what,
        error=SpeechError,
        extra="voice",
        data=data,
    )
    if done.returncode != 0 or not done.stdout:
        reason = (
            last_line(done.stderr) if done.stderr.strip() else f"exit status {done.returncode}, no output"
        )
        raise SpeechError(f"{what}: ffmpeg failed ({reason})")
    return done.stdout


def decode(data: bytes, timeout_s: float = 30.0) -> Speech:
    """Any audio ffmpeg reads (MP3, Opus, AAC, float WAV …) as a :class:`Speech` at :data:`DECODE_RATE`.

    Blocking. Without ffmpeg this is a :class:`SpeechError` naming the extra that ships one.
    """
    raw = _run_ffmpeg(
        ["-i", "pipe:0", "-ac", "1", "-ar", str(DECODE_RATE), "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"],
        data,
        timeout_s,
        "decoding the speech audio",
    )
    return speech_from_pcm(np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2"), DECODE_RATE)


class Encoder:
    """Encodes speech into the format chats get, through ffmpeg.

    Without ffmpeg every format falls back to the WAV itself (chats play it as a file, not as a voice
    message), with one warning per encoder rather than one per message.
    """

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._warned = False

    def encode(self, speech: Speech, fmt: AudioFormat) -> tuple[bytes, str]:
        """``speech`` as ``fmt``: the bytes and their file suffix (``.mp3``, ``.ogg`` or ``.wav``).

        Blocking. A failing ffmpeg is a :class:`SpeechError`.
        """
        if fmt == "wav":
            return speech.wav, SUFFIXES["wav"]
        if find_ffmpeg() is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "voice messages are sent as WAV: there is no ffmpeg to make %s (install ffmpeg, or pip "
                    'install -e ".[voice]" for the one in imageio-ffmpeg)',
                    fmt,
                )
            return speech.wav, SUFFIXES["wav"]
        args = ["-f", "wav", "-i", "pipe:0", "-ac", "1", *_CODEC_ARGS[fmt], "pipe:1"]
        return _run_ffmpeg(args, speech.wav, self.timeout_s, f"encoding a voice as {fmt}"), SUFFIXES[fmt]


class VoiceCache:
    """Encoded voices on disk, one file per (engine identity, text, format), within ``cap_bytes``.

    A hit refreshes the file's modification time, so pruning (after each :meth:`put`) removes the
    least recently used files first. Files are written under a temporary name and renamed into place,
    so another process sharing the directory never reads half a file; a file that another process
    pruned meanwhile is simply a miss. ``cap_bytes = 0`` keeps only the file just written (the chat
    still needs it), until the next :meth:`put`.
    """

    def __init__(self, directory: Path, cap_bytes: int) -> None:
        self.directory = directory
        self.cap_bytes = cap_bytes
        self._lock = threading.Lock()

    @staticmethod
    def key(identity: str, text: str, fmt: str) -> str:
        """The cache key (SHA-256, hex) of ``text`` spoken as ``identity`` says, in format ``fmt``."""
        return hashlib.sha256("\x00".join((identity, fmt, text)).encode()).hexdigest()

    def get(self, key: str) -> Path | None:
        """The file stored under ``key``, or ``None``."""
        with self._lock:
            for suffix in SUFFIXES.values():
                path = self.directory / f"{key}{suffix}"
                try:
                    os.utime(path)
                except OSError:
                    continue
                return path
        return None

    def put(self, key: str, data: bytes, suffix: str) -> Path:
        """Store ``data`` under ``key`` as ``<key><suffix>``, then prune to the cap; its path.

        A :class:`SpeechError` when the directory cannot be written.
        """
        target = self.directory / f"{key}{suffix}"
        with self._lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                descriptor, scratch = tempfile.mkstemp(prefix=f".{key}.", dir=self.directory)
                try:
                    # NOTE: mkstemp makes the file private; a OneBot server running as another user
                    # may be handed its path.
                    os.fchmod(descriptor, 0o644)
                    with os.fdopen(descriptor, "wb") as out:
                        out.write(data)
                    os.replace(scratch, target)
                finally:
                    Path(scratch).unlink(missing_ok=True)
            except OSError as exc:
                raise SpeechError(
                    f"cannot store a voice in {self.directory}: {exc.strerror or exc}"
                ) from None
            self._prune(keep=target)
        return target

    def _prune(self, keep: Path) -> None:
        """Delete the least recently used files until the directory is within the cap."""
        files: list[tuple[float, int, Path]] = []
        total = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += stat.st_size
                if entry.name != keep.name:
                    files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        files.sort()
        for _mtime, size, path in files:
            if total <= self.cap_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot prune the voice cache file %s: %s", path, exc.strerror or exc)
                continue
            total -= size
