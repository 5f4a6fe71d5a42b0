"""Which engine speaks for a pack: the one its ``[voice]`` names, else ``[voice] engine``.

Each engine is built the first time it is asked for and then kept (a loaded model, an open HTTP
client), so a bot whose packs all speak Japanese never loads espeak-ng, and one with a speech server
never loads Kokoro.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from bot.config.voice import EngineName, VoiceConfig
from bot.errors import SpeechError
from bot.voice.espeak import EspeakSpeech
from bot.voice.kokoro import KokoroSpeech
from bot.voice.openai_speech import OpenAISpeech
from bot.voice.speech import SpeechEngine

ENGINE_NAMES: tuple[EngineName, ...] = get_args(EngineName)


class Engines:
    """The speech engines of one bot, built lazily from ``[voice]``; :meth:`aclose` closes them."""

    def __init__(self, config: VoiceConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self._built: dict[EngineName, SpeechEngine] = {}

    def engine(self, name: EngineName) -> SpeechEngine:
        """The engine called ``name``, built now if it was not yet."""
        built = self._built.get(name)
        if built is None:
            built = self._build(name)
            self._built[name] = built
        return built

    def resolve(self, pack_engine: str | None, language: str) -> SpeechEngine:
        """The engine for a pack whose ``[voice] engine`` is ``pack_engine`` (``None``: the bot's
        ``[voice] engine``) and which speaks ``language``.

        ``auto`` is the speech server when ``[voice.openai] base_url`` is set, else Kokoro for
        Japanese and espeak-ng for everything else.
        """
        name = pack_engine or self.config.engine
        if name == "auto":
            if self.config.openai.base_url:
                return self.engine("openai")
            primary = language.strip().lower().split("-")[0]
            return self.engine("kokoro" if primary == "ja" else "espeak")
        for known in ENGINE_NAMES:
            if name == known:
                return self.engine(known)
        raise SpeechError(f"unknown voice engine {name!r}: use auto, {', '.join(ENGINE_NAMES)}")

    async def aclose(self) -> None:
        """Close every engine built so far."""
        built, self._built = list(self._built.values()), {}
        for engine in built:
            await engine.aclose()

    def _build(self, name: EngineName) -> SpeechEngine:
        if name == "openai":
            return OpenAISpeech(self.config.openai)
        if name == "kokoro":
            return KokoroSpeech(self.data_dir / "models", self.config.threads)
        return EspeakSpeech(self.config.threads)
