"""The chat model seam: :class:`ChatModel`, its OpenAI-compatible implementation, and the factory.

Any OpenAI-compatible endpoint works (OpenAI, DeepSeek, Qwen, GLM, Moonshot, vLLM, llama.cpp server,
Ollama). Without one, :func:`create_chat_model` gives the offline local model of
:mod:`bot.engine.local_model`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import openai

from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from bot.config import LLMConfig
    from bot.engine.prompt import Prompt

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Completion:
    """A model's answer, with the token usage it reported (``None`` when it reported none)."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatModel(ABC):
    """Turns a :class:`~bot.engine.prompt.Prompt` into the character's next line."""

    name: str

    @abstractmethod
    async def complete(self, prompt: Prompt) -> Completion:
        """Answer ``prompt``; raise :class:`~bot.errors.ModelError` when no answer can be had."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory; the default holds nothing."""

    def variant(self, model: str) -> ChatModel:
        """The same endpoint answering with ``model`` (a budget's cheaper fallback); models that
        cannot switch return themselves. A variant shares its parent's connections: close the parent."""
        return self


_RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


class OpenAIChatModel(ChatModel):
    """Any OpenAI-compatible chat-completions endpoint, with timeouts and retries.

    Rate limits (429), server errors (5xx) and connection errors are retried up to ``max_retries``
    times with exponential backoff starting at ``backoff_s``; other errors fail at once.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        max_retries: int = 3,
        temperature: float = 0.8,
        max_tokens: int = 256,
        backoff_s: float = 0.5,
    ) -> None:
        self.name = model
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=0,
        )

    @classmethod
    def from_config(cls, config: LLMConfig) -> OpenAIChatModel:
        return cls(
            model=config.model,
            base_url=config.base_url,
            api_key=config.api_key(),
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
        )

    async def complete(self, prompt: Prompt) -> Completion:
        attempt = 0
        while True:
            try:
                response = await self._client.chat.completions.create(
                    model=self.name,
                    messages=prompt.to_messages(),  # type: ignore[arg-type]
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                )
            except openai.APITimeoutError as exc:
                error: Exception = exc
                retry = attempt < self.max_retries
            except _RETRYABLE as exc:
                error = exc
                retry = attempt < self.max_retries
            except openai.APIError as exc:
                raise ModelError(f"the model server refused the request: {exc}") from exc
            else:
                return self._completion(response)
            if not retry:
                if isinstance(error, openai.APITimeoutError):
                    raise ModelTimeout(f"the model did not answer within {self.timeout_s:g} s") from error
                raise ModelError(f"the model server failed after {attempt + 1} attempts: {error}") from error
            delay = self.backoff_s * 2**attempt
            log.warning("model request failed (%s); retry %d in %.1f s", error, attempt + 1, delay)
            await asyncio.sleep(delay)
            attempt += 1

    def variant(self, model: str) -> ChatModel:
        if model == self.name:
            return self
        other = copy.copy(self)
        other.name = model
        return other

    def _completion(self, response: openai.types.chat.ChatCompletion) -> Completion:
        if not response.choices:
            raise ModelError("the model server answered with no choices")
        text = response.choices[0].message.content or ""
        usage = response.usage
        return Completion(
            text=text,
            model=response.model or self.name,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def aclose(self) -> None:
        await self._client.close()


def create_chat_model(config: LLMConfig, data_dir: Path, base_dir: Path | None = None) -> ChatModel:
    """The model ``[llm]`` asks for: the OpenAI-compatible endpoint, or the offline local model.

    A relative ``local_model`` path is taken relative to ``base_dir`` (the folder of ``bot.toml``).
    """
    if config.resolved_backend() == "openai":
        return OpenAIChatModel.from_config(config)
    from bot.engine.local_model import PACKAGED_MODEL, LocalChatModel

    local = Path(config.local_model)
    if base_dir is not None and config.local_model != PACKAGED_MODEL and not local.is_absolute():
        config = config.model_copy(update={"local_model": str(base_dir / local)})
    return LocalChatModel.from_config(config, data_dir)


class EchoChatModel(ChatModel):
    """A deterministic, instant model: answers with the character's name and the message it got.

    The fake shipped beside the seam, for unit tests and benchmarks that must not measure a model.
    It records every prompt it was given.
    """

    name = "echo"

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    async def complete(self, prompt: Prompt) -> Completion:
        self.prompts.append(prompt)
        text = f"{prompt.character} heard {prompt.message.speaker}: {prompt.message.text}"
        return Completion(text=text, model=self.name, prompt_tokens=prompt.tokens.total, completion_tokens=8)
