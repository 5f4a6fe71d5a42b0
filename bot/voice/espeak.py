"""Chinese, Cantonese, English and a hundred more languages offline: espeak-ng, through ctypes.

``espeakng-loader`` ships libespeak-ng 1.52 with its data (Debian's espeak-ng lacks Mandarin). The
voice is formant synthesis: robotic, but with the right tones, in a few milliseconds per sentence.

The library is driven through its classic C API in synchronous mode: ``espeak_Synth`` returns once
the whole text is spoken, having handed the samples to a callback on the calling thread. Text is
always passed as plain UTF-8 (never with the SSML or phoneme-input flags), because it is what a chat
model or a user wrote.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from importlib import metadata
from typing import ClassVar

import numpy as np

from bot.errors import SpeechError, missing_extra
from bot.voice.audio import speech_from_pcm
from bot.voice.speech import Speech, missing_modules

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_DEFAULT_WPM = 175
_MIN_WPM, _MAX_WPM = 80, 450
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

DEFAULT_VOICE = "en-us"
VOICES_BY_LANGUAGE = {"zh": "cmn", "yue": "yue", "en": "en-us", "ja": "ja"}
"""espeak-ng's voice for a language code; other codes are espeak-ng voice names themselves."""


class _Library:
    """libespeak-ng, initialised, with the callback that collects what it speaks."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ModuleNotFoundError:
            raise missing_extra(SpeechError, "the espeak-ng voice", "espeakng-loader", "voice") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise SpeechError(f"cannot load libespeak-ng from espeakng-loader: {exc}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise SpeechError(f"libespeak-ng could not start (its data should be in {data_path.decode()})")
        self.lib = lib
        self.sample_rate: int = rate
        self.collected: list[np.ndarray] = []
        # NOTE: the library keeps only a C pointer to the callback; this reference keeps it alive.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if count > 0 and samples:
            self.collected.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, speed: float) -> np.ndarray:
        """``text`` in ``voice`` at ``speed`` as 16-bit samples (the caller holds the lock)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise SpeechError(
                f"espeak-ng has no voice {voice!r} (Mandarin is 'cmn', Cantonese 'yue', English 'en-us')"
            )
        wpm = min(_MAX_WPM, max(_MIN_WPM, round(_DEFAULT_WPM * speed)))
        self.lib.espeak_SetParameter(_RATE, wpm, 0)
        encoded = text.encode()
        self.collected = []
        status = self.lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        collected, self.collected = self.collected, []
        if status != _EE_OK:
            raise SpeechError(f"espeak-ng failed to speak (error {status})")
        if not collected:
            return np.zeros(0, np.int16)
        return np.concatenate(collected).astype(np.int16)


class EspeakSpeech:
    """espeak-ng speaking any of its languages; ``threads`` is accepted for symmetry and unused (the
    synthesis is single-threaded and fast)."""

    name = "espeak"

    # NOTE: libespeak-ng keeps one state per process (the voice, the rate, the callback) and is not
    # thread-safe, so the loaded library and the lock around it belong to the class, not to an
    # instance: two instances must not speak at once either.
    _library: ClassVar[_Library | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        try:
            self._release = f"espeakng-loader-{metadata.version('espeakng-loader')}"
        except metadata.PackageNotFoundError:
            self._release = "espeakng-loader-missing"

    def identity(self, voice: str, speed: float) -> str:
        return f"espeak|{self._release}|{voice or DEFAULT_VOICE}|{speed:g}"

    def missing(self) -> str | None:
        return missing_modules("the espeak-ng voice", {"espeakng_loader": "espeakng-loader"})

    def default_voice(self, language: str) -> str:
        code = language.strip().lower()
        return VOICES_BY_LANGUAGE.get(code) or VOICES_BY_LANGUAGE.get(code.split("-")[0]) or code

    def load(self) -> None:
        """Load and initialise libespeak-ng (blocking; does nothing when it is loaded)."""
        with self._lock:
            self._load()

    async def speak(self, text: str, *, voice: str, speed: float) -> Speech:
        return await asyncio.to_thread(self._speak, text, voice or DEFAULT_VOICE, speed)

    async def aclose(self) -> None:
        """Nothing to release: the library stays loaded for the process (it cannot be unloaded)."""

    @classmethod
    def _load(cls) -> _Library:
        if cls._library is None:
            cls._library = _Library()
        return cls._library

    def _speak(self, text: str, voice: str, speed: float) -> Speech:
        with self._lock:
            library = self._load()
            samples = library.speak(text, voice, speed)
            rate = library.sample_rate
        if samples.size == 0:
            raise SpeechError(f"espeak-ng ({voice}) found nothing to pronounce in {text[:40]!r}")
        return speech_from_pcm(samples, rate)
