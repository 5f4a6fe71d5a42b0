"""The chat model seam: :class:`ChatModel`, its OpenAI-compatible implementation, and the factory.

Any OpenAI-compatible endpoint works (OpenAI, DeepSeek, Qwen, GLM, Moonshot, vLLM, llama.cpp server,
Ollama). :func:`bot.engine.backends.create_chat_model` picks it or the offline local model of
:mod:`bot.engine.local_model`.
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import openai

from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx2

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


# NOTE: the openai package caps a server's Retry-After at this many seconds: a longer wait is not
# retried at all (openai/_constants.py MAX_RETRY_AFTER_DELAY), so the request fails at once.
SDK_MAX_RETRY_AFTER_S = 120.0


class OpenAIChatModel(ChatModel):
    """Any OpenAI-compatible chat-completions endpoint, with timeouts and retries.

    Retries are the ``openai`` package's own: rate limits (429), server errors (5xx, 408, 409),
    timeouts and lost connections are retried up to ``max_retries`` times, waiting what the
    server's ``Retry-After`` / ``retry-after-ms`` asks (up to 120 s: a longer wait is not retried)
    or else 0.5 s doubling up to 8 s. Every way the request or its answer can go wrong ends in a
    :class:`~bot.errors.ModelError` (:class:`~bot.errors.ModelTimeout` for timeouts).
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
    ) -> None:
        self.name = model
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [_log_failed_answer]}),
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
        try:
            response = await self._client.chat.completions.create(
                model=self.name,
                messages=prompt.to_messages(),  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.APITimeoutError as exc:
            raise ModelTimeout(
                f"the model did not answer within {self.timeout_s:g} s ({self._tries()})"
            ) from exc
        except openai.APIStatusError as exc:
            raise ModelError(self._status_failure(exc)) from exc
        except openai.APIConnectionError as exc:
            raise ModelError(f"cannot reach the model server ({self._tries()}): {exc}") from exc
        except openai.OpenAIError as exc:
            raise ModelError(f"the model server's answer is unusable: {exc}") from exc
        except Exception as exc:  # a body the SDK cannot read (e.g. malformed JSON) raises anything
            raise ModelError(f"the model server's answer is unreadable: {type(exc).__name__}: {exc}") from exc
        return self._completion(response)

    def _tries(self) -> str:
        return f"{self.max_retries + 1} attempts" if self.max_retries else "1 attempt, no retries"

    def _status_failure(self, exc: openai.APIStatusError) -> str:
        status = exc.status_code
        if not (status in (408, 409, 429) or status >= 500):
            return f"the model server refused the request: {exc.message}"
        wait = _retry_after_s(exc.response.headers)
        if self.max_retries and wait is not None and wait > SDK_MAX_RETRY_AFTER_S:
            return (
                f"the model server answered {status} and asked to wait {wait:g} s, longer than the "
                f"{SDK_MAX_RETRY_AFTER_S:g} s the openai package waits, so it was not retried: {exc.message}"
            )
        return f"the model server failed after {self._tries()}: {exc.message}"

    def variant(self, model: str) -> ChatModel:
        if model == self.name:
            return self
        other = copy.copy(self)
        other.name = model
        return other

    def _completion(self, response: object) -> Completion:
        """Read the answer the SDK parsed; it does not validate it, so every field is checked here."""
        if not isinstance(response, openai.types.chat.ChatCompletion):
            shown = str(response)[:80]
            raise ModelError(f"the model server's answer is not a chat completion (JSON): {shown!r}")
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise ModelError("the model server answered with no choices")
        message = getattr(choices[0], "message", None)
        if message is None:
            raise ModelError("the model server answered with a choice without a message")
        text = getattr(message, "content", None)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ModelError(
                f"the model server's message content is a {type(text).__name__}, not text: {str(text)[:80]!r}"
            )
        usage = getattr(response, "usage", None)
        model = getattr(response, "model", None)
        return Completion(
            text=text,
            model=model if isinstance(model, str) and model else self.name,
            prompt_tokens=_count(getattr(usage, "prompt_tokens", None)),
            completion_tokens=_count(getattr(usage, "completion_tokens", None)),
        )

    async def aclose(self) -> None:
        await self._client.close()


async def _log_failed_answer(response: httpx2.Response) -> None:
    """Log each failed HTTP answer of the model server: the openai package retries them quietly."""
    if response.status_code >= 400:
        wait = _retry_after_s(response.headers)
        asked = f", asking to wait {wait:g} s" if wait is not None else ""
        log.warning("the model server answered %d%s", response.status_code, asked)


def _count(value: object) -> int | None:
    """A token count the server reported, or ``None`` when it reported none (or nonsense)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a ``retry-after-ms`` or numeric ``Retry-After`` header asks for, in seconds."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) / scale
            except ValueError:
                continue
    return None


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
