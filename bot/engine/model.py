"""The chat model seam: :class:`ChatModel`, its OpenAI-compatible implementation, and the factory.

Any OpenAI-compatible endpoint works (OpenAI, DeepSeek, Qwen, GLM, Moonshot, vLLM, llama.cpp server,
Ollama). :func:`bot.engine.backends.create_chat_model` picks it or the offline local model of
:mod:`bot.engine.local_model`.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import logging
import math
import os
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import httpx

from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bot.config import LLMConfig, PromptConfig
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

    @property
    def ready(self) -> bool:
        """Whether a reply can start now; a local model still loading is not (it answers when loaded)."""
        return True

    def budgets(self, configured: PromptConfig) -> PromptConfig:
        """The prompt budgets this model is given: ``[prompt]``, or less for a model that reads slowly."""
        return configured

    @abstractmethod
    async def complete(self, prompt: Prompt) -> Completion:
        """Answer ``prompt``; raise :class:`~bot.errors.ModelError` when no answer can be had."""

    async def warm_up(self, standing: Sequence[Prompt] = ()) -> None:  # noqa: B027 - optional hook
        """Get ready to answer: load, and read the ``standing`` prompts (each character's persona and
        rules, the default character first) ahead where that saves time later. Called in the
        background at start; the default has nothing to do."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory; the default holds nothing."""

    def variant(self, model: str) -> ChatModel:
        """The same endpoint answering with ``model`` (a budget's cheaper fallback); models that
        cannot switch return themselves. A variant shares its parent's connections: close the parent."""
        return self


MAX_RETRY_AFTER_S = 120.0
"""The longest ``Retry-After`` waited for: a server asking for longer is not retried, the request fails at
once (the cap the ``openai`` package had, kept when the model moved to plain httpx)."""
INITIAL_RETRY_DELAY_S = 0.5
"""The first retry's wait when the server asks for none; it doubles with each retry …"""
MAX_RETRY_DELAY_S = 8.0
"""… up to this. Each such wait is cut by up to a quarter at random, so clients do not retry in step."""
DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRIED_STATUSES = frozenset({408, 409, 429})
"""Besides every 5xx: request timeout, lock conflict, rate limit."""
ENV_HEADERS = (("OpenAI-Organization", "OPENAI_ORG_ID"), ("OpenAI-Project", "OPENAI_PROJECT_ID"))
"""Headers sent when these environment variables are set, as the ``openai`` package did."""


class OpenAIChatModel(ChatModel):
    """Any OpenAI-compatible chat-completions endpoint, with timeouts and retries.

    One ``POST {base_url}/chat/completions`` through httpx, the JSON written and read here (the
    ``openai`` package cost a fifth of the event loop's CPU per reply). ``timeout_s`` bounds each
    request. Rate limits (429), server errors (5xx, 408, 409), timeouts and lost connections are
    retried up to ``max_retries`` times, waiting what the server's ``Retry-After`` /
    ``retry-after-ms`` asks (up to :data:`MAX_RETRY_AFTER_S`: a longer wait is not retried) or else
    0.5 s doubling up to 8 s, less up to a quarter at random; an ``x-should-retry: true|false`` header
    overrides the status. Each failed HTTP answer is logged as a warning. Every way the request or its
    answer can go wrong ends in a :class:`~bot.errors.ModelError` (:class:`~bot.errors.ModelTimeout`
    for timeouts).

    Without ``base_url`` the ``OPENAI_BASE_URL`` environment variable, else the OpenAI API, is used;
    ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` are sent as ``OpenAI-Organization`` / ``OpenAI-Project``
    headers when set, as the ``openai`` package did.
    """

    path = "/chat/completions"
    """Where requests go, under ``base_url``."""

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
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self._url = _endpoint_url(self.base_url, self.path)
        headers = {
            "Authorization": f"Bearer {api_key or 'not-needed'}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        headers |= {header: value for header, name in ENV_HEADERS if (value := os.environ.get(name))}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            follow_redirects=True,
        )

    @classmethod
    def from_config(cls, config: LLMConfig) -> Self:
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
        response = await self._post(json.dumps(self._body(prompt), ensure_ascii=False).encode())
        return self._completion(_answer(response))

    def _body(self, prompt: Prompt) -> dict[str, object]:
        """The request's JSON."""
        return {
            "model": self.name,
            "messages": prompt.to_messages(),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    async def _post(self, content: bytes) -> httpx.Response:
        """POST ``content``, retrying what may succeed later; the first 2xx answer, or a ModelError."""
        attempts = 0
        while True:
            attempts += 1
            retries_left = attempts <= self.max_retries
            try:
                response = await self._client.post(self._url, content=content)
            except httpx.RequestError as exc:  # a timeout, refused, reset, DNS, TLS, a broken stream
                if retries_left:
                    await asyncio.sleep(_retry_delay_s(attempts - 1, None, random.random()))
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise ModelTimeout(
                        f"the model did not answer within {self.timeout_s:g} s ({_tries(attempts)})"
                    ) from exc
                raise ModelError(
                    f"cannot reach the model server ({_tries(attempts)}): {type(exc).__name__}: {exc}"
                ) from exc
            if response.is_success:
                return response
            wait = _retry_after_s(response.headers)
            _log_failed_answer(response.status_code, wait)
            if retries_left and _should_retry(response, wait):
                await asyncio.sleep(_retry_delay_s(attempts - 1, wait, random.random()))
                continue
            raise ModelError(self._status_failure(response, wait, attempts))

    def _status_failure(self, response: httpx.Response, wait: float | None, attempts: int) -> str:
        status = response.status_code
        message = _error_message(response)
        if not _retried_status(status):
            return f"the model server refused the request: {message}"
        if self.max_retries and wait is not None and wait > MAX_RETRY_AFTER_S:
            return (
                f"the model server answered {status} and asked to wait {wait:g} s, longer than the "
                f"{MAX_RETRY_AFTER_S:g} s the bot waits at most, so it was not retried: {message}"
            )
        return f"the model server failed after {_tries(attempts)}: {message}"

    def variant(self, model: str) -> ChatModel:
        if model == self.name:
            return self
        other = copy.copy(self)
        other.name = model
        return other

    def _completion(self, answer: object) -> Completion:
        """Read the parsed JSON answer; a server can send anything, so every field is checked here."""
        answer, choice = _first_choice(answer, "chat completion")
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise ModelError("the model server answered with a choice without a message")
        text = message.get("content")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ModelError(
                f"the model server's message content is a {type(text).__name__}, not text: {str(text)[:80]!r}"
            )
        return self._with_usage(answer, text)

    def _with_usage(self, answer: dict[str, object], text: str) -> Completion:
        """``text`` as a :class:`Completion`, with the model name and token counts ``answer`` reports."""
        usage = answer.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        model = answer.get("model")
        return Completion(
            text=text,
            model=model if isinstance(model, str) and model else self.name,
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


COMPLETION_STOP = ("」", "\n")
"""Where a script-style answer ends: the close of the character's line, or the next speaker's line."""


class OpenAICompletionModel(OpenAIChatModel):
    """A model trained on plain scripts, asked through ``POST {base_url}/completions``.

    The prompt goes as one text (:meth:`~bot.engine.prompt.Prompt.to_completion`: persona, scenes,
    the conversation, ending in ``Name:「``), and the answer is read from ``choices[0].text`` up to
    the line's closing ``」``. Requests, retries and errors are :class:`OpenAIChatModel`'s.
    """

    path = "/completions"

    def _body(self, prompt: Prompt) -> dict[str, object]:
        return {
            "model": self.name,
            "prompt": prompt.to_completion(),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": list(COMPLETION_STOP),
        }

    def _completion(self, answer: object) -> Completion:
        answer, choice = _first_choice(answer, "text completion")
        text = choice.get("text") if isinstance(choice, dict) else None
        if text is None:
            raise ModelError(
                "the model server answered with a choice without text: does it serve /completions?"
            )
        if not isinstance(text, str):
            raise ModelError(f"the model server's completion text is a {type(text).__name__}, not text")
        # NOTE: a server may ignore ``stop``; the line still ends at its closing bracket or newline.
        for stop in COMPLETION_STOP:
            text = text.split(stop, 1)[0]
        return self._with_usage(answer, text.strip())


def _first_choice(answer: object, kind: str) -> tuple[dict[str, object], object]:
    """A server's parsed ``answer`` as the JSON object it must be (a ``kind``), and its first choice
    (``choices`` must be a non-empty list); a server can send anything, so both are checked."""
    if not isinstance(answer, dict):
        shown = str(answer)[:80]
        raise ModelError(f"the model server's answer is not a {kind} (JSON): {shown!r}")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ModelError("the model server answered with no choices")
    return answer, choices[0]


def _endpoint_url(base_url: str, endpoint: str) -> httpx.URL:
    """``{base_url}{endpoint}``, keeping a query the base URL carries (``?api-version=…``)."""
    url = httpx.URL(base_url)
    path, separator, query = url.raw_path.partition(b"?")
    return url.copy_with(raw_path=path.rstrip(b"/") + endpoint.encode() + separator + query)


def _tries(attempts: int) -> str:
    return f"{attempts} attempts" if attempts > 1 else "1 attempt, no retries"


def _retried_status(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def _should_retry(response: httpx.Response, wait: float | None) -> bool:
    """Whether a failed answer may succeed later: never when it asks for a wait past the cap, else
    as the server's ``x-should-retry`` says, else by its status."""
    if wait is not None and wait > MAX_RETRY_AFTER_S:
        return False
    verdict = response.headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return _retried_status(response.status_code)


def _retry_delay_s(retry: int, asked: float | None, jitter: float) -> float:
    """The wait before retry number ``retry + 1``: what the server ``asked`` when it asked for a
    positive wait up to the cap, else 0.5 s doubling up to 8 s, cut by a quarter of ``jitter`` (0 to 1)."""
    if asked is not None and 0 < asked <= MAX_RETRY_AFTER_S:
        return asked
    backoff = min(INITIAL_RETRY_DELAY_S * 2.0 ** min(retry, 32), MAX_RETRY_DELAY_S)
    return backoff * (1 - 0.25 * jitter)


def _answer(response: httpx.Response) -> object:
    """The JSON of a 2xx answer; a ModelError when it is none."""
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if content_type.endswith("json"):
            raise ModelError(f"the model server's answer is unreadable: {type(exc).__name__}: {exc}") from exc
        shown = response.text[:80]
        raise ModelError(f"the model server's answer is not a chat completion (JSON): {shown!r}") from exc


def _error_message(response: httpx.Response) -> str:
    """``Error code: 503 - <what the server said>``: the message of an OpenAI error object
    (``{"error": {"message": …}}``), else the start of the body."""
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str) and message:
        said = message
    else:
        said = " ".join(response.text.split())
        if len(said) > 200:
            said = said[:199] + "…"
    return f"Error code: {response.status_code} - {said}" if said else f"Error code: {response.status_code}"


def _log_failed_answer(status: int, wait: float | None) -> None:
    """Log each failed HTTP answer of the model server, retried or not."""
    asked = f", asking to wait {wait:g} s" if wait is not None else ""
    log.warning("the model server answered %d%s", status, asked)


def _count(value: object) -> int | None:
    """A token count the server reported, or ``None`` when it reported none (or nonsense)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a ``retry-after-ms``, numeric ``Retry-After`` or HTTP-date ``Retry-After`` header asks
    for, in seconds (infinite when it asks for an endless wait); ``None`` when it asks for none."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                wait = float(value) / scale
            except ValueError:
                continue
            if not math.isnan(wait):
                return wait
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        date = email.utils.parsedate_tz(value)
        return None if date is None else float(email.utils.mktime_tz(date) - time.time())
    except (TypeError, ValueError, OverflowError):
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
