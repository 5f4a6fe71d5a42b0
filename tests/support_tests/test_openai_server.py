"""Tests for :mod:`tests.support.openai_server`, driven by the real ``openai`` package."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.support.openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="test-model") as srv:
        yield srv


def _sync_client(server: FakeOpenAIServer, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, **kwargs)


def test_sync_reply_and_recording(server: FakeOpenAIServer) -> None:
    with _sync_client(server) as client:
        completion = client.chat.completions.create(
            model="test-model",
            messages=[
                {"role": "system", "content": "You are Alice."},
                {"role": "user", "content": "hello there, how are you doing on this fine day?"},
            ],
        )
    assert (
        completion.choices[0].message.content == "Reply #1: heard 'hello there, how are you doing on this f'"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "test-model"
    assert completion.id.startswith("chatcmpl-")
    assert completion.created > 0
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    (request,) = server.requests
    assert request.number == 1
    assert request.status == 200
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.model == "test-model"
    assert [m["role"] for m in request.messages] == ["system", "user"]
    assert "You are Alice." in request.all_text()
    assert request.system_text() == "You are Alice."
    assert request.last_user_text().startswith("hello there")


@pytest.mark.asyncio
async def test_async_client_fail_next_then_success(server: FakeOpenAIServer) -> None:
    server.fail_next(500, times=2)
    async with AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.choices[0].message.content == "Reply #3: heard 'hi'"
    assert [r.status for r in server.requests] == [500, 500, 200]


@pytest.mark.asyncio
async def test_async_streaming_with_usage(server: FakeOpenAIServer) -> None:
    server.reply_with(lambda body: f"You said {len(body['messages'])} things, friend.")
    async with AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        finish_reasons: list[str] = []
        usage_seen = False
        async for chunk in stream:
            if chunk.usage is not None:
                usage_seen = True
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    finish_reasons.append(choice.finish_reason)
    assert "".join(pieces) == "You said 2 things, friend."
    assert len(pieces) > 1
    assert finish_reasons == ["stop"]
    assert usage_seen
    assert server.last_request.stream


def test_sync_streaming_without_usage(server: FakeOpenAIServer) -> None:
    server.reply_text("streamed words arrive")
    with _sync_client(server) as client:
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with stream:
            chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed words arrive"
    assert all(c.usage is None for c in chunks)


def test_models_and_unknown_route(server: FakeOpenAIServer) -> None:
    with _sync_client(server) as client:
        models = client.models.list()
        assert [m.id for m in models.data] == ["test-model"]
        assert client.models.retrieve("test-model").id == "test-model"
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="e", input="x")
    assert ("GET", "/v1/models") in server.endpoint_hits
    assert server.requests == []


def test_rate_limit_body_headers_and_clear(server: FakeOpenAIServer) -> None:
    server.fail_next(429, body={"error": {"message": "slow down", "type": "rate_limit_error"}})
    with _sync_client(server) as client:
        with pytest.raises(openai.RateLimitError, match="slow down"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        server.clear()
        assert server.requests == []
        completion = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "again"}]
        )
    assert completion.choices[0].message.content == "Reply #1: heard 'again'"


def test_api_key_enforced_and_malformed_request_rejected() -> None:
    with FakeOpenAIServer(api_key="right") as server:
        with OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with OpenAI(base_url=server.base_url, api_key="right", max_retries=0) as client:
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="m", messages=[])
        assert [r.status for r in server.requests] == [401, 400]


def test_reply_function_errors_become_500(server: FakeOpenAIServer) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise RuntimeError("boom")

    server.reply_with(broken)
    with _sync_client(server) as client, pytest.raises(openai.InternalServerError, match="boom"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_delay_and_client_timeout(server: FakeOpenAIServer) -> None:
    server.set_delay(0.5)
    with _sync_client(server, timeout=0.1) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    server.set_delay(0.2)
    started = time.monotonic()
    with _sync_client(server) as client:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - started >= 0.2


def test_wait_for_requests_sync_from_another_thread(server: FakeOpenAIServer) -> None:
    def call() -> None:
        with _sync_client(server) as client:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "bg"}])

    import threading

    thread = threading.Thread(target=call)
    thread.start()
    try:
        requests = server.wait_for_requests(1, timeout=5)
    finally:
        thread.join()
    assert requests[0].last_user_text() == "bg"
    with pytest.raises(AssertionError, match="expected 5"):
        server.wait_for_requests(5, timeout=0.05)


@pytest.mark.asyncio
async def test_wait_for_requests_async_does_not_block_loop(server: FakeOpenAIServer) -> None:
    async with AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        task = asyncio.create_task(
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "later"}])
        )
        requests = await server.wait_for_requests_async(1, timeout=5)
        await task
    assert requests[0].last_user_text() == "later"


@pytest.mark.asyncio
async def test_async_context_manager() -> None:
    async with FakeOpenAIServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
    server.stop()  # idempotent


def _post_chat(server: FakeOpenAIServer) -> tuple[int, dict[str, str], bytes]:
    """One chat-completions request over plain HTTP: the answer exactly as the server sent it."""
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_answer_next_sends_a_body_that_is_not_json(server: FakeOpenAIServer) -> None:
    server.answer_next("<html>502 Bad Gateway</html>", media_type="text/html")
    status, headers, body = _post_chat(server)
    assert (status, body) == (200, b"<html>502 Bad Gateway</html>")
    assert headers["content-type"].startswith("text/html")
    server.answer_next(b"{not json", times=2)
    assert _post_chat(server)[::2] == (200, b"{not json")
    assert _post_chat(server)[::2] == (200, b"{not json")
    assert json.loads(_post_chat(server)[2])["choices"][0]["message"]["content"].startswith("Reply #4:")
    assert [r.status for r in server.requests] == [200, 200, 200, 200]


def test_answer_next_sends_a_completion_with_a_field_broken(server: FakeOpenAIServer) -> None:
    body = server.completion_json("hello")
    assert body["choices"][0]["message"]["content"] == "hello"
    assert body["model"] == "test-model"
    del body["choices"][0]["message"]
    server.answer_next(body)
    server.answer_next({"error": "nothing here"}, status=202)
    first, second = _post_chat(server), _post_chat(server)
    assert first[0] == 200
    assert json.loads(first[2])["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert (second[0], json.loads(second[2])) == (202, {"error": "nothing here"})
    with pytest.raises(ValueError, match="times"):
        server.answer_next("x", times=0)


def test_a_rate_limit_carries_its_retry_after_header(server: FakeOpenAIServer) -> None:
    server.fail_next(429, headers={"Retry-After": "20"})
    server.fail_next(429, headers={"retry-after-ms": "1500"})
    first, second = _post_chat(server), _post_chat(server)
    assert (first[0], first[1]["retry-after"]) == (429, "20")
    assert (second[0], second[1]["retry-after-ms"]) == (429, "1500")
    assert json.loads(first[2])["error"]["type"] == "rate_limit_error"


def test_one_answer_can_be_slow(server: FakeOpenAIServer) -> None:
    server.answer_next(server.completion_json("slow"), delay=0.3)
    started = time.monotonic()
    assert json.loads(_post_chat(server)[2])["choices"][0]["message"]["content"] == "slow"
    slow = time.monotonic() - started
    started = time.monotonic()
    _post_chat(server)
    assert slow >= 0.3 > time.monotonic() - started, "the delay was that answer's alone"


def test_text_completions_answer_the_prompt_and_are_recorded_apart(server: FakeOpenAIServer) -> None:
    with _sync_client(server) as client:
        answer = client.completions.create(
            model="base-model", prompt="Orla:「Aye.」\nPip:「Tie the boat.」\nOrla:「", stop=["」"]
        )
        server.fail_next(503)
        with pytest.raises(openai.InternalServerError):
            client.completions.create(model="base-model", prompt="Pip:「Again?」\nOrla:「")
        with pytest.raises(openai.BadRequestError, match="'prompt' must be a non-empty string"):
            client.completions.create(model="base-model", prompt="")
    assert answer.choices[0].text == "Reply #1: continued 'Pip: Tie the boat.'"
    assert answer.model == "base-model"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    assert [request.status for request in server.completion_requests] == [200, 503, 400]
    assert server.completion_requests[0].prompt == "Orla:「Aye.」\nPip:「Tie the boat.」\nOrla:「"
    assert server.requests == [], "chat completions are recorded apart"
