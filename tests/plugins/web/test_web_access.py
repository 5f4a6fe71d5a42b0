"""Who gets into the web console: every route wants a session, logging in wants the token or the
one-time link, every POST wants its CSRF token, and wrong tokens are limited per address."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route

from bot.config import BotConfig
from bot.engine.model import EchoChatModel
from bot.runtime import Runtime
from plugins.web import PREFIX, WebConsole

TOKEN = "a-long-random-console-token"


@pytest.fixture
async def runtime(config: BotConfig) -> AsyncIterator[Runtime]:
    runtime = await Runtime.create(config, model=EchoChatModel())
    yield runtime
    await runtime.aclose()


def serve(console: WebConsole) -> httpx.AsyncClient:
    """A client of the bot's app with the console mounted where the host mounts it."""
    app = FastAPI()
    app.mount(PREFIX, console.app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")


@asynccontextmanager
async def opened(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, *, logged_in: bool
) -> AsyncIterator[tuple[WebConsole, httpx.AsyncClient]]:
    """The console serving ``runtime`` with :data:`TOKEN` as its token, and a client of it (logged in
    when ``logged_in``)."""
    monkeypatch.setenv(config.console.token_env, TOKEN)
    console = WebConsole(config)
    console.attach(runtime)
    async with serve(console) as client:
        if logged_in:
            await log_in(client)
        yield console, client


@pytest.fixture
async def console(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[WebConsole, httpx.AsyncClient]]:
    async with opened(config, runtime, monkeypatch, logged_in=False) as both:
        yield both


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def log_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    form = await client.get(f"{PREFIX}/login")
    return await client.post(f"{PREFIX}/login", data={"token": token, "csrf": csrf_of(form.text), "next": ""})


def console_paths(console: WebConsole) -> list[tuple[str, str]]:
    """Every route of the console as (method, path), with made-up values in its parameters."""
    found: list[tuple[str, str]] = []
    for route in console.app.routes:
        if isinstance(route, Mount) or not isinstance(route, Route):
            continue
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        found.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return found


async def test_every_route_but_the_login_wants_a_session(
    console: tuple[WebConsole, httpx.AsyncClient],
) -> None:
    web, client = console
    walked = [(method, path) for method, path in console_paths(web) if path != "/login"]
    assert ("GET", "/") in walked
    assert ("POST", "/logout") in walked
    for method, path in walked:
        response = await client.request(method, PREFIX + path)
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith(f"{PREFIX}/login?next="), (method, path)
        else:
            assert response.status_code == 401, (method, path)


async def test_the_token_opens_a_strict_http_only_session(
    console: tuple[WebConsole, httpx.AsyncClient],
) -> None:
    _web, client = console
    refused = await log_in(client, "wrong")
    assert refused.status_code == 401
    assert "That token or link is not valid." in refused.text

    done = await log_in(client)
    assert (done.status_code, done.headers["location"]) == (303, f"{PREFIX}/")
    cookie = next(
        value for value in done.headers.get_list("set-cookie") if value.startswith("console_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie

    overview = await client.get(f"{PREFIX}/")
    assert overview.status_code == 200
    assert "Orla Finch" in overview.text
    assert "苏小满" in overview.text


async def test_forms_without_their_csrf_token_are_refused(
    console: tuple[WebConsole, httpx.AsyncClient],
) -> None:
    _web, client = console
    await client.get(f"{PREFIX}/login")
    forged = await client.post(f"{PREFIX}/login", data={"token": TOKEN, "csrf": "guessed"})
    assert forged.status_code == 403

    await log_in(client)
    assert (await client.post(f"{PREFIX}/logout")).status_code == 403
    page = await client.get(f"{PREFIX}/")
    out = await client.post(f"{PREFIX}/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await client.get(f"{PREFIX}/")).status_code == 303, "the session is gone"


async def test_wrong_tokens_are_limited_per_address(console: tuple[WebConsole, httpx.AsyncClient]) -> None:
    web, client = console
    for _ in range(web.config.console.login_attempts):
        assert (await log_in(client, "guess")).status_code == 401
    blocked = await log_in(client)
    assert blocked.status_code == 429, "even the right token waits once the limit is reached"
    assert int(blocked.headers["retry-after"]) > 0


async def test_without_a_token_a_one_time_link_logs_in_once(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(config.console.token_env, raising=False)
    web = WebConsole(config)
    with caplog.at_level("INFO"):
        web.attach(runtime)
    link = web.gate.login_link(web.base_url)
    assert link is not None
    assert link in caplog.text, "the link is in the log at start"
    code = link.rsplit("code=", 1)[1]
    async with serve(web) as client:
        first = await client.get(f"{PREFIX}/login", params={"code": code, "next": f"{PREFIX}/?x=1"})
        assert (first.status_code, first.headers["location"]) == (303, f"{PREFIX}/?x=1")
        async with serve(web) as stranger:
            again = await stranger.get(f"{PREFIX}/login", params={"code": code})
            assert again.status_code == 200
            assert "That token or link is not valid." in again.text
            assert (await log_in(stranger, "")).status_code == 401, "no token is set: only links log in"


async def test_a_login_never_sends_anyone_off_the_console(
    console: tuple[WebConsole, httpx.AsyncClient],
) -> None:
    _web, client = console
    for target in ("//evil.example/", "https://evil.example/", "/elsewhere"):
        form = await client.get(f"{PREFIX}/login")
        done = await client.post(
            f"{PREFIX}/login", data={"token": TOKEN, "csrf": csrf_of(form.text), "next": target}
        )
        assert done.headers["location"] == f"{PREFIX}/"
