"""Speech from any server that speaks OpenAI's ``POST /v1/audio/speech``.

OpenAI itself, or one run locally in front of GPT-SoVITS, CosyVoice or Fish-Speech. WAV is asked
for; some local servers answer in their own format whatever is asked, so anything else that comes
back is decoded with ffmpeg. Either way the audio is rewritten as a clean 16-bit mono WAV: streamed
WAV headers give no length, or a wrong one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot.config.voice import OpenAISpeechConfig
from bot.errors import SpeechError
from bot.voice.audio import decode, is_wav, read_wav, speech_from_pcm
from bot.voice.speech import Speech

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_EXCERPT_CHARS = 200


class OpenAISpeech:
    """An OpenAI-compatible speech endpoint, through one HTTP client (opened by the first
    :meth:`speak`, kept until :meth:`aclose`)."""

    name = "openai"

    def __init__(self, config: OpenAISpeechConfig) -> None:
        self.config = config
        self.url = f"{(config.base_url or DEFAULT_BASE_URL).rstrip('/')}/audio/speech"
        self._client: httpx.AsyncClient | None = None

    def identity(self, voice: str, speed: float) -> str:
        base_url = self.config.base_url or DEFAULT_BASE_URL
        return f"openai|{base_url}|{self.config.model}|{voice or self.config.voice}|{speed:g}"

    def missing(self) -> str | None:
        if self.config.base_url or self.config.api_key():
            return None
        return (
            f"OpenAI's speech API needs a key in ${self.config.api_key_env} (or set [voice.openai] base_url)"
        )

    def default_voice(self, language: str) -> str:
        return self.config.voice

    async def speak(self, text: str, *, voice: str, speed: float) -> Speech:
        payload = {
            "model": self.config.model,
            "input": text,
            "voice": voice or self.config.voice,
            "response_format": "wav",
            "speed": speed,
        }
        headers = {}
        key = self.config.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout_s = self.config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._http().post(self.url, json=payload, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise SpeechError(
                f"the speech server at {self.url} did not answer within {timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise SpeechError(
                f"cannot reach the speech server at {self.url}: {str(exc) or type(exc).__name__}"
            ) from None
        if not response.is_success:
            raise SpeechError(
                f"the speech server at {self.url} refused (HTTP {response.status_code}): "
                f"{_error_excerpt(response)}"
            )
        audio = response.content
        if not audio:
            raise SpeechError(f"the speech server at {self.url} answered with no audio")
        if is_wav(audio):
            try:
                samples, rate = read_wav(audio)
            except SpeechError:
                pass  # float or 24-bit samples: ffmpeg reads those
            else:
                # NOTE: a streamed WAV may say its data is 0 bytes long; ffmpeg then reads to the end.
                if samples.size:
                    return speech_from_pcm(samples, rate)
        return await asyncio.to_thread(decode, audio, timeout_s)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s)
        return self._client


def _error_excerpt(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message.strip():
            return _shorten(message)
        if isinstance(body.get("detail"), str):
            return _shorten(body["detail"])
    text = response.text.strip()
    return _shorten(text) if text else "no details given"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else f"{text[: _EXCERPT_CHARS - 1]}…"
