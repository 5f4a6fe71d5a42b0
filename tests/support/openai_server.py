"""A real OpenAI-compatible chat-completions (and speech) server for tests.

The bot talks to its LLM over HTTP (``bot.engine.model``), so end-to-end tests need
something that speaks the same wire protocol: the same JSON shapes, status codes and
server-sent-event framing the real API uses.  Mocking the client would skip exactly the layers
(timeouts, retries, streaming parsers, error mapping) that tend to break.

The server runs uvicorn + a minimal Starlette app in a daemon thread with its own event loop,
so it keeps answering while a synchronous test blocks *and* while an asyncio test's loop is busy
with other work.  All mutable state is guarded by one lock, making the scripting methods safe to
call from any thread.

``POST /v1/completions`` (the legacy text-completions API of script-trained base models) answers
``choices[0].text`` the same way, recorded in :attr:`FakeOpenAIServer.completion_requests`.

``POST /v1/audio/speech`` answers with a real WAV (a sine tone as long as the input would take to
say), so voice code can be tested down to decoding the audio.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import socket
import threading
import time
import uuid
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "FakeOpenAIServer",
    "RecordedRequest",
    "ReplyFn",
    "content_text",
    "speech_duration_s",
    "tone_wav",
]

ReplyFn = Callable[[dict[str, Any]], str]
"""Computes the assistant's reply text from the raw request body."""

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
SPEECH_PATH = "/v1/audio/speech"
SPEECH_RATE = 24_000
SPEECH_S_PER_CHAR = 0.06
SPEECH_MIN_S = 0.3
_STREAM_PIECE = re.compile(r"\S+\s*|\s+")


def content_text(content: Any) -> str:
    """Flatten an OpenAI message ``content`` into plain text.

    Content is either a string or (for multimodal requests) a list of parts such as
    ``{"type": "text", "text": ...}`` and ``{"type": "image_url", ...}``; only the text parts
    carry words a test can assert on.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    return str(content)


def _rough_tokens(text: str) -> int:
    """Approximate a token count (about four characters per token), never zero.

    Real counts are irrelevant here; the bot only needs plausible, monotonic numbers to exercise
    its usage accounting.
    """
    return max(1, len(text) // 4)


def speech_duration_s(text: str) -> float:
    """How long the fake's speech for ``text`` lasts: 0.06 s a character, at least 0.3 s."""
    return max(SPEECH_MIN_S, SPEECH_S_PER_CHAR * len(text))


def tone_wav(duration_s: float, sample_rate: int = SPEECH_RATE, frequency: float = 220.0) -> bytes:
    """A 16-bit mono WAV of a sine tone at a third of full scale: what the fake says."""
    seconds = np.arange(round(duration_s * sample_rate)) / sample_rate
    pcm = (10_000 * np.sin(2 * np.pi * frequency * seconds)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _default_error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


@dataclass(frozen=True)
class RecordedRequest:
    """One chat-completions (or speech) request exactly as the server received it.

    ``number`` is the 1-based arrival order since the last :meth:`FakeOpenAIServer.clear`, which
    is also the ``#<n>`` used by the default reply.  ``status`` is the HTTP status the server
    answered with, so retry behaviour can be asserted (e.g. ``[500, 500, 200]``).
    """

    number: int
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    status: int
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` array of the request (empty if it was malformed)."""
        messages = self.json.get("messages")
        if not isinstance(messages, list):
            return []
        return [m for m in messages if isinstance(m, dict)]

    @property
    def model(self) -> str | None:
        model = self.json.get("model")
        return model if isinstance(model, str) else None

    @property
    def prompt(self) -> str | None:
        """A text-completions request's ``prompt``."""
        prompt = self.json.get("prompt")
        return prompt if isinstance(prompt, str) else None

    @property
    def input(self) -> str | None:
        """A speech request's ``input``: the text to say."""
        text = self.json.get("input")
        return text if isinstance(text, str) else None

    @property
    def voice(self) -> str | None:
        """A speech request's ``voice``."""
        voice = self.json.get("voice")
        return voice if isinstance(voice, str) else None

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    def texts(self, role: str | None = None) -> list[str]:
        """Plain text of each message, optionally only those with the given role."""
        return [
            content_text(m.get("content")) for m in self.messages if role is None or m.get("role") == role
        ]

    def all_text(self, sep: str = "\n") -> str:
        """All message contents joined, for "does the prompt mention X anywhere" assertions."""
        return sep.join(self.texts())

    def last_user_text(self) -> str:
        """Text of the last ``user`` message, or ``""`` when there is none."""
        users = self.texts("user")
        return users[-1] if users else ""

    def system_text(self, sep: str = "\n") -> str:
        """All ``system`` (and ``developer``) messages joined: where a persona prompt ends up."""
        return sep.join(
            content_text(m.get("content")) for m in self.messages if m.get("role") in {"system", "developer"}
        )


@dataclass
class _Failure:
    """A scripted answer sent instead of the normal one: ``body`` as JSON, or ``content`` verbatim."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    media_type: str = "application/json"
    delay: float | None = None
    """Seconds before this answer; ``None`` uses :meth:`FakeOpenAIServer.set_delay`'s."""


class FakeOpenAIServer:
    """OpenAI chat-completions API on ``127.0.0.1:<free port>``, scriptable from tests.

    Use it as a context manager (sync or async) or call :meth:`start` / :meth:`stop`.  Point the
    bot (or an ``openai`` client) at :attr:`base_url`.  Every chat-completions request is
    recorded in :attr:`requests`, every speech request in :attr:`speech_requests`;
    :meth:`reply_with`, :meth:`fail_next`, :meth:`answer_next` and :meth:`set_delay` change how the
    next requests of either kind are answered (failures and scripted answers share one queue).

    When ``api_key`` is given, requests without ``Authorization: Bearer <api_key>`` get a 401,
    which lets a test prove the bot really sends its configured key.
    """

    def __init__(
        self, *, model: str = "fake-model", api_key: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.host = host
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._speech_requests: list[RecordedRequest] = []
        self._completion_requests: list[RecordedRequest] = []
        self._endpoint_hits: list[tuple[str, str]] = []
        self._failures: deque[_Failure] = deque()
        self._reply_fn: ReplyFn | None = None
        self._delay = 0.0
        self._counter = itertools.count(1)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> Self:
        """Bind a free port and serve from a background thread; returns once accepting.

        The socket is bound here, before the thread starts, so the port is known immediately
        and there is no window in which another process could grab it.
        """
        if self._thread is not None:
            raise RuntimeError("FakeOpenAIServer already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._build_app(),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"fake-openai-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self._cleanup_socket()
                raise RuntimeError("FakeOpenAIServer thread died during startup") from self._thread_error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("FakeOpenAIServer did not start in time")
            time.sleep(0.01)
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced by start(); a daemon thread must not die silently
            self._thread_error = exc

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down and join its thread.  Idempotent."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        thread.join(timeout)
        self._cleanup_socket()
        self._thread = None
        self._server = None
        if thread.is_alive():
            raise RuntimeError("FakeOpenAIServer thread did not stop in time")

    def _cleanup_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAIServer not started")
        return self._port

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client's ``base_url`` should be, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ scripting

    def reply_with(self, fn: ReplyFn | None) -> None:
        """Compute future replies with ``fn(request_body)``; ``None`` restores the default."""
        with self._lock:
            self._reply_fn = fn

    def reply_text(self, text: str) -> None:
        """Answer every future request with the same fixed text."""
        self.reply_with(lambda _body: text)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue ``times`` failures with HTTP ``status``; later requests are answered normally.

        Calls accumulate, so ``fail_next(500, 2); fail_next(429)`` fails the next three requests
        in that order.  ``body`` defaults to an OpenAI-style ``{"error": {...}}`` object.
        ``headers`` go out with each failure: ``fail_next(429, headers={"Retry-After": "1"})`` is a
        rate limit asking the client to wait a second (``retry-after-ms`` asks in milliseconds).
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        payload = (
            body
            if body is not None
            else _error_body(f"injected failure {status}", _default_error_type(status))
        )
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, payload, dict(headers or {})))

    def answer_next(
        self,
        body: Mapping[str, Any] | str | bytes,
        *,
        status: int = 200,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        media_type: str = "application/json",
        delay: float | None = None,
    ) -> None:
        """Queue ``times`` answers sent as given, for servers that answer but answer wrongly.

        A mapping goes out as JSON, text and bytes verbatim (so ``answer_next("<html>oops")`` is a
        200 whose body is not JSON).  Start from :meth:`completion_json` to break one field, e.g. a
        choice without ``message``.  ``delay`` holds this answer back that many seconds instead of
        :meth:`set_delay`'s.  These share :meth:`fail_next`'s queue, in the order they were added.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if isinstance(body, Mapping):
            scripted = _Failure(status, dict(body), dict(headers or {}), delay=delay)
        else:
            content = body.encode() if isinstance(body, str) else bytes(body)
            scripted = _Failure(status, {}, dict(headers or {}), content, media_type, delay)
        with self._lock:
            for _ in range(times):
                self._failures.append(scripted)

    def completion_json(self, text: str, *, model: str | None = None) -> dict[str, Any]:
        """A complete, valid chat-completion object answering ``text`` (what the server sends)."""
        tokens = _rough_tokens(text)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model or self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": 2 * tokens},
        }

    def set_delay(self, seconds: float) -> None:
        """Delay every answer (including failures and the first stream chunk) by ``seconds``."""
        with self._lock:
            self._delay = max(0.0, seconds)

    def clear(self) -> None:
        """Forget recorded requests and reset all scripting to the defaults."""
        with self._lock:
            self._requests.clear()
            self._speech_requests.clear()
            self._completion_requests.clear()
            self._endpoint_hits.clear()
            self._failures.clear()
            self._reply_fn = None
            self._delay = 0.0
            self._counter = itertools.count(1)

    @staticmethod
    def default_reply(number: int, body: Mapping[str, Any]) -> str:
        """The deterministic reply used unless :meth:`reply_with` was called.

        Exposed so tests can compute the exact text they expect the bot to relay.
        """
        last_user = ""
        messages = body.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    last_user = content_text(message.get("content"))
                    break
        return f"Reply #{number}: heard '{last_user[:40]}'"

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the chat-completions requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def speech_requests(self) -> list[RecordedRequest]:
        """A snapshot of the ``/v1/audio/speech`` requests received so far, in arrival order."""
        with self._lock:
            return list(self._speech_requests)

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """A snapshot of the ``/v1/completions`` requests received so far, in arrival order."""
        with self._lock:
            return list(self._completion_requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("FakeOpenAIServer has received no chat-completions request")
            return self._requests[-1]

    @property
    def endpoint_hits(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every HTTP request, including ``/v1/models`` and unknown paths."""
        with self._lock:
            return list(self._endpoint_hits)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``n`` chat-completions requests were recorded; return them all.

        Blocks the calling thread: from asyncio code use :meth:`wait_for_requests_async`, or the
        event loop (and any OneBot client on it) would freeze.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(self._timeout_message(n, timeout))
            return list(self._requests)

    async def wait_for_requests_async(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:  # noqa: ASYNC109
        """Asyncio-friendly :meth:`wait_for_requests` that polls without blocking the loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._requests) >= n:
                    return list(self._requests)
            if time.monotonic() >= deadline:
                with self._lock:
                    raise AssertionError(self._timeout_message(n, timeout))
            await asyncio.sleep(0.01)

    def _timeout_message(self, n: int, timeout: float) -> str:
        return (
            f"expected {n} chat-completions request(s) within {timeout}s, got {len(self._requests)}; "
            f"endpoint hits: {self._endpoint_hits}"
        )

    # ------------------------------------------------------------------ HTTP app

    def _build_app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route(CHAT_PATH, self._chat_completions, methods=["POST"]),
                Route(COMPLETIONS_PATH, self._completions, methods=["POST"]),
                Route(SPEECH_PATH, self._speech, methods=["POST"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/v1/models/{model:path}", self._get_model, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=methods),
            ]
        )

    def _hit(self, request: Request) -> None:
        with self._lock:
            self._endpoint_hits.append((request.method, request.url.path))

    def _model_object(self, model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "fake-openai-server"}

    async def _list_models(self, request: Request) -> Response:
        self._hit(request)
        return JSONResponse({"object": "list", "data": [self._model_object(self.model)]})

    async def _get_model(self, request: Request) -> Response:
        self._hit(request)
        model_id = request.path_params["model"]
        if model_id != self.model:
            return JSONResponse(
                _error_body(
                    f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found"
                ),
                status_code=404,
            )
        return JSONResponse(self._model_object(model_id))

    async def _not_found(self, request: Request) -> Response:
        self._hit(request)
        return JSONResponse(
            _error_body(f"Unknown request URL: {request.method} {request.url.path}", "invalid_request_error"),
            status_code=404,
        )

    async def _read(self, request: Request) -> tuple[dict[str, str], Any, dict[str, Any]]:
        """A request's headers (lower-cased names), its JSON as sent, and that JSON as an object
        (empty when it is none); the request counts as a hit."""
        self._hit(request)
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            parsed: Any = json.loads(await request.body())
        except ValueError:
            parsed = None
        return headers, parsed, parsed if isinstance(parsed, dict) else {}

    def _record(
        self,
        into: list[RecordedRequest],
        request: Request,
        number: int,
        headers: dict[str, str],
        body: dict[str, Any],
        failure: _Failure | None,
    ) -> RecordedRequest:
        record = RecordedRequest(
            number=number,
            method=request.method,
            path=request.url.path,
            headers=headers,
            json=body,
            status=failure.status if failure is not None else 200,
            received_at=time.time(),
        )
        with self._changed:
            into.append(record)
            self._changed.notify_all()
        return record

    @staticmethod
    async def _wait_or_fail(failure: _Failure | None, delay: float) -> Response | None:
        """Wait the scripted delay; then the scripted failure's response, or ``None`` to answer."""
        if failure is not None and failure.delay is not None:
            delay = failure.delay
        if delay:
            await asyncio.sleep(delay)
        if failure is not None and failure.content is not None:
            return Response(
                failure.content,
                status_code=failure.status,
                headers=failure.headers,
                media_type=failure.media_type,
            )
        if failure is not None:
            return JSONResponse(failure.body, status_code=failure.status, headers=failure.headers)
        return None

    async def _chat_completions(self, request: Request) -> Response:
        headers, parsed, body = await self._read(request)

        with self._lock:
            number = next(self._counter)
            failure = self._failures.popleft() if self._failures else None
            reply_fn = self._reply_fn
            delay = self._delay

        text = ""
        if failure is None:
            failure = self._validate(body, headers, parsed)
        if failure is None:
            try:
                text = reply_fn(body) if reply_fn is not None else self.default_reply(number, body)
            except Exception as exc:
                failure = _Failure(500, _error_body(f"reply function raised {exc!r}", "server_error"))

        record = self._record(self._requests, request, number, headers, body, failure)
        if (refusal := await self._wait_or_fail(failure, delay)) is not None:
            return refusal

        model = body.get("model") if isinstance(body.get("model"), str) else self.model
        prompt_tokens = _rough_tokens(record.all_text())
        completion_tokens = _rough_tokens(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if record.stream:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            return StreamingResponse(
                self._stream(completion_id, created, str(model), text, usage if include_usage else None),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        answer = self.completion_json(text, model=str(model))
        answer.update(id=completion_id, created=created, usage=usage)
        return JSONResponse(answer)

    async def _completions(self, request: Request) -> Response:
        """A text completion of ``prompt``: the reply (``reply_with``'s, else ``Reply #<n>: …`` naming
        the prompt's last line) in ``choices[0].text``, as a base model served by vLLM or llama.cpp
        answers."""
        headers, parsed, body = await self._read(request)

        with self._lock:
            number = len(self._completion_requests) + 1
            failure = self._failures.popleft() if self._failures else None
            reply_fn = self._reply_fn
            delay = self._delay

        text = ""
        if failure is None:
            failure = self._validate_completion(body, headers, parsed)
        if failure is None:
            try:
                if reply_fn is not None:
                    text = reply_fn(body)
                else:
                    said = str(body["prompt"]).rstrip().rsplit("\n", 2)[-2:][0]
                    said = said.replace("「", " ").replace("」", "")
                    text = f"Reply #{number}: continued '{said[:40]}'"
            except Exception as exc:
                failure = _Failure(500, _error_body(f"reply function raised {exc!r}", "server_error"))

        record = self._record(self._completion_requests, request, number, headers, body, failure)
        if (refusal := await self._wait_or_fail(failure, delay)) is not None:
            return refusal
        model = body.get("model") if isinstance(body.get("model"), str) else self.model
        prompt_tokens = _rough_tokens(record.prompt or "")
        completion_tokens = _rough_tokens(text)
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex[:24]}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _validate_completion(
        self, body: dict[str, Any], headers: dict[str, str], parsed: Any
    ) -> _Failure | None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _Failure(
                401, _error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key")
            )
        if not isinstance(parsed, dict):
            return _Failure(400, _error_body("Request body is not a JSON object", "invalid_request_error"))
        for name in ("model", "prompt"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _Failure(
                    400, _error_body(f"'{name}' must be a non-empty string", "invalid_request_error")
                )
        return None

    async def _speech(self, request: Request) -> Response:
        """A WAV tone lasting :func:`speech_duration_s` of the input, whatever format was asked for
        (as some local speech servers do)."""
        headers, parsed, body = await self._read(request)

        with self._lock:
            number = len(self._speech_requests) + 1
            failure = self._failures.popleft() if self._failures else None
            delay = self._delay
        if failure is None:
            failure = self._validate_speech(body, headers, parsed)

        self._record(self._speech_requests, request, number, headers, body, failure)
        if (refusal := await self._wait_or_fail(failure, delay)) is not None:
            return refusal
        wav = await asyncio.to_thread(tone_wav, speech_duration_s(str(body["input"])))
        return Response(wav, media_type="audio/wav")

    def _validate_speech(self, body: dict[str, Any], headers: dict[str, str], parsed: Any) -> _Failure | None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _Failure(
                401, _error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key")
            )
        if not isinstance(parsed, dict):
            return _Failure(400, _error_body("Request body is not a JSON object", "invalid_request_error"))
        for name in ("model", "input", "voice"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _Failure(
                    400, _error_body(f"'{name}' must be a non-empty string", "invalid_request_error")
                )
        return None

    def _validate(self, body: dict[str, Any], headers: dict[str, str], parsed: Any) -> _Failure | None:
        """Reject what the real API rejects, so a malformed bot request fails loudly in tests."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _Failure(
                401, _error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key")
            )
        if not isinstance(parsed, dict):
            return _Failure(400, _error_body("Request body is not a JSON object", "invalid_request_error"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _Failure(400, _error_body("'messages' must be a non-empty array", "invalid_request_error"))
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return _Failure(400, _error_body("each message needs a 'role'", "invalid_request_error"))
        return None

    async def _stream(
        self, completion_id: str, created: int, model: str, text: str, usage: dict[str, int] | None
    ) -> AsyncIterator[bytes]:
        """Yield the reply as OpenAI-style SSE chunks, word by word, ending with ``[DONE]``."""

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        yield event([choice({"role": "assistant", "content": ""})])
        for piece in _STREAM_PIECE.findall(text):
            yield event([choice({"content": piece})])
            await asyncio.sleep(0)
        yield event([choice({}, "stop")])
        if usage is not None:
            yield event([], usage=usage)
        yield b"data: [DONE]\n\n"
