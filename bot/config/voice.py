"""``[voice]``: characters speak their replies (see :mod:`bot.voice`)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from bot.config.section import Section

EngineName = Literal["openai", "kokoro", "espeak"]
VoiceMode = Literal["off", "on", "only"]


class OpenAISpeechConfig(Section):
    """Any server speaking OpenAI's ``POST /v1/audio/speech``: OpenAI itself, or one run locally for
    GPT-SoVITS, CosyVoice or Fish-Speech."""

    base_url: str | None = None
    """``https://api.openai.com/v1`` when unset; setting it makes ``engine = "auto"`` use this engine."""
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-4o-mini-tts"
    voice: str = "alloy"
    """The voice of packs that name none."""
    timeout_s: float = Field(30.0, gt=0)
    price_per_million_chars: float = Field(0.0, ge=0)
    """USD per million characters spoken, for ``/usage``; 0 shows characters and seconds only."""

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


class VoiceConfig(Section):
    """Voice messages with replies, per chat with ``/voice on|off|only`` (group admins)."""

    mode: VoiceMode = "off"
    """A chat's mode until its admins say otherwise: ``on`` = text plus a voice message, ``only`` =
    the voice alone (the text when the voice fails), ``off`` = text."""
    engine: Literal["auto", "openai", "kokoro", "espeak"] = "auto"
    """For packs whose ``[voice]`` names no engine. ``auto``: ``openai`` when ``[voice.openai]
    base_url`` is set, else offline: Kokoro for Japanese, espeak-ng for anything else."""
    format: Literal["mp3", "opus", "wav"] = "mp3"
    """What chats get (through ffmpeg; WAV when there is no ffmpeg)."""
    cooldown_s: float = Field(15.0, ge=0)
    """Least time between two voice messages in one chat."""
    max_chars: int = Field(200, ge=10)
    """Longer replies are spoken in their first sentences up to this length (``long_replies``)."""
    long_replies: Literal["first_sentences", "skip"] = "first_sentences"
    """``skip``: a reply longer than ``max_chars`` gets no voice at all."""
    timeout_s: float = Field(30.0, gt=0)
    """Longest wait for one voice (translation and synthesis); after it the chat gets text only."""
    cache_mb: float = Field(200.0, ge=0)
    """Size cap of ``data/voice/``, the synthesised audio kept by (engine, voice, text)."""
    clips: bool = True
    """Post the character's own recorded line (a pack's ``voices.jsonl``) when a reply matches it."""
    clip_min_similarity: float | None = Field(None, ge=-1, le=1)
    """Unset: the embedder's own, as for screenshots."""
    clip_min_overlap: float = Field(0.5, ge=0, le=1)
    """Share of the recorded line's words the reply must have (stricter than screenshots: a clip says
    its words aloud)."""
    clip_cooldown_s: float = Field(60.0, ge=0)
    """Least time between two recorded lines in one chat."""
    threads: int = Field(1, ge=1)
    """Threads the offline engines compute on (see ``[embedding] threads``)."""
    openai: OpenAISpeechConfig = OpenAISpeechConfig()
