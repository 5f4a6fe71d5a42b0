"""The speech seam: text in, :class:`Speech` (a WAV) out, whatever the engine.

Every engine hands back 16-bit mono WAV, so caching, encoding for chats and measuring duration are
done once, in :mod:`bot.voice.audio`, not once per engine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.errors import SpeechError, missing_extra


@dataclass(slots=True, frozen=True)
class Speech:
    """Synthesised audio: a complete 16-bit mono WAV file."""

    wav: bytes
    sample_rate: int
    duration_s: float


class SpeechEngine(Protocol):
    """Turns text into speech in one of its voices.

    ``speak`` never blocks the event loop (native engines run in a thread, one at a time) and raises
    :class:`~bot.errors.SpeechError` with a message for humans when it cannot speak: the engine is not
    installed, the voice does not exist, the server refused or timed out.
    """

    name: str
    """``openai``, ``kokoro`` or ``espeak``: what ``[voice] engine`` and a pack's ``[voice]`` call it."""

    def identity(self, voice: str, speed: float) -> str:
        """What makes this engine's audio for a text differ from another's (engine, model, voice,
        speed): the cache key's prefix."""
        ...

    def missing(self) -> str | None:
        """Why it cannot speak on this machine (a package to install, a key to set), said before any
        voice is asked of it (``/voice on``); ``None`` when nothing is known to be missing."""
        ...

    def default_voice(self, language: str) -> str:
        """The voice for a pack that names none, by the language it speaks (``ja``, ``zh``, ``yue``,
        ``en`` …)."""
        ...

    async def speak(self, text: str, *, voice: str, speed: float) -> Speech:
        """``text`` spoken by ``voice`` (``""``: the engine's default voice) at ``speed`` (1 = normal)."""
        ...

    async def aclose(self) -> None:
        """Release what the engine holds (an HTTP client, a loaded model)."""
        ...


def missing_modules(what: str, modules: Mapping[str, str]) -> str | None:
    """The "install the ``voice`` extra" message when one of ``modules`` (import name: distribution)
    cannot be imported here, naming the first; ``None`` when all of them can."""
    for module, package in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return str(missing_extra(SpeechError, what, package, "voice"))
    return None
