"""The OneBot way in, walked from outside against the real process: only the authenticated reverse
WebSocket is served, HTTP POST only when turned on and then only with the token or the signature,
and no frame or segment the implementation sends can close the connection or drop a message.

Each test starts one bot (``python -m bot``) like :mod:`tests.test_e2e`, whose :class:`Harness`
it reuses with its own ``[platforms.onebot]``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
import time
import tomllib
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.importers.samples import WREN, card_png_bytes, v3
from tests.support.bot_process import write_bot_toml
from tests.support.onebot_client import OneBotClient, OneBotConnectError
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e import SELF_ID, TOKEN, Harness, reply_in, say

SUPERUSER = 501
OTHER_ID = 20_000
"""An account that is not connected when the forged requests name it."""
SECRET = "e2e-hmac-secret"
NOT_SERVED = {401, 403, 404, 405}
NONEBOT_ROUTES = ("/onebot/v11", "/onebot/v11/", "/onebot/v11/http", "/onebot/v11/http/", "/onebot/v11/ws")
"""Where NoneBot's OneBot adapter takes events (HTTP POST at the first four)."""


@pytest.fixture
def model_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def harness_with(
    root: Path, data: Path, model_server: FakeOpenAIServer, **sections: dict[str, Any]
) -> Harness:
    """The E2E harness, its ``bot.toml`` updated section by section (``platforms={"onebot": {...}}``)."""
    harness = Harness(root, data, {"base_url": model_server.base_url, "model": "fake-model"})
    config = tomllib.loads(harness.config.read_text(encoding="utf-8"))
    for name, values in sections.items():
        section = config.setdefault(name, {})
        for key, value in values.items():
            if isinstance(value, dict):
                section.setdefault(key, {}).update(value)
            else:
                section[key] = value
    write_bot_toml(harness.config, config)
    return harness


@pytest.fixture
async def bot(
    tmp_path: Path, model_server: FakeOpenAIServer, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Harness, OneBotClient]]:
    """The bot with the test's extra sections (``@pytest.mark.parametrize("bot", [...], indirect=True)``)
    and the OneBot client of account ``SELF_ID`` connected to it."""
    harness = harness_with(tmp_path / "bot", tmp_path / "data", model_server, **request.param)
    client = await harness.start()
    yield harness, client
    await client.close()
    assert harness.process is not None
    tail = harness.process.tail(60)
    harness.stop()
    print(tail)


def group_message(self_id: int, group: int, user: int, text: str) -> dict[str, Any]:
    """A group message event ``@bot text`` as a OneBot implementation posts it."""
    return {
        "time": int(time.time()),
        "self_id": self_id,
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": int(time.monotonic_ns() % 1_000_000_000),
        "group_id": group,
        "user_id": user,
        "message": [
            {"type": "at", "data": {"qq": str(self_id)}},
            {"type": "text", "data": {"text": f" {text}"}},
        ],
        "raw_message": f"[CQ:at,qq={self_id}] {text}",
        "font": 0,
        "sender": {"user_id": user, "nickname": f"user{user}", "role": "member"},
    }


def served(harness: Harness) -> str:
    """What the bot logged it serves at start."""
    assert harness.process is not None
    line = harness.process.wait_for_log(re.compile(r"serving (.*)$", re.MULTILINE), timeout=5)
    return line[1].strip()


async def refused_handshake(url: str, self_id: int, token: str | None) -> int | None:
    with pytest.raises(OneBotConnectError) as refused:
        await OneBotClient.connect(url, self_id=self_id, access_token=token, timeout=1)
    return refused.value.last_status


@pytest.mark.parametrize("bot", [{"admins": {"superusers": [f"onebot:{SUPERUSER}"]}}], indirect=True)
async def test_only_the_authenticated_websocket_is_served_and_no_frame_closes_it(
    bot: tuple[Harness, OneBotClient],
) -> None:
    harness, client = bot
    assert served(harness) == "websocket /onebot/v11/ws, /console/ (the web console, behind its login)"

    # Forged events on every route NoneBot would serve, for a connected and an unconnected account.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{harness.port}") as http:
        for path in NONEBOT_ROUTES:
            for self_id in (SELF_ID, OTHER_ID):
                forged = group_message(self_id, 1001, SUPERUSER, "/admin add 777")
                answer = await http.post(path, json=forged, headers={"X-Self-ID": str(self_id)})
                assert answer.status_code in NOT_SERVED, (path, answer.status_code, answer.text)
        with_token = await http.post(
            "/onebot/v11/http",
            json=group_message(SELF_ID, 1001, SUPERUSER, "/admin add 777"),
            headers={"X-Self-ID": str(SELF_ID), "Authorization": f"Bearer {TOKEN}"},
        )
        assert with_token.status_code == 404, "HTTP POST is off: not even the token opens it"
        for path in ("/", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/onebot/v11/ws"):
            assert (await http.get(path)).status_code == 404, path

    # The WebSocket wants the token, before it says anything about the account.
    for self_id, token in ((OTHER_ID, None), (OTHER_ID, "wrong"), (SELF_ID, None)):
        assert await refused_handshake(harness.url, self_id, token) == 403
    assert await refused_handshake(f"{harness.url}?access_token=wrong", OTHER_ID, None) == 403
    other = await OneBotClient.connect(f"{harness.url}?access_token={TOKEN}", self_id=OTHER_ID, timeout=10)
    await other.expect_no_message(within=0.5)
    await other.close()
    await client.expect_no_message(within=0.5)
    await say(client, 1001, "/admin list", user=SUPERUSER)
    admins = await reply_in(client, 1001)
    assert admins.text().startswith("No bot admins granted here"), "777 was never added"

    # Frames that are not JSON, too deep for Python, or no event at all are dropped, not the socket.
    await client.send_raw("[" * 10_000 + "]" * 10_000)
    await client.send_raw('{"a": ' * 100 + "1" + "}" * 100)
    await client.send_raw("{this is not json")
    await client.send_raw('{"post_type": "message", "message_type": "group"}')
    too_deep = json.loads("[" * 100 + "]" * 100)
    await client.send_raw(json.dumps(group_message(SELF_ID, 1002, 502, "too deep") | {"junk": too_deep}))
    # Broken segments are dropped; the rest of the message is answered.
    await client.send_group_message(
        1002, 502, "is the lamp lit?", at_bot=True, segments=[{"type": "at", "data": {}}, {"type": "reply"}]
    )
    lamp = await reply_in(client, 1002)
    assert lamp.text().endswith("heard 'user502:is the lamp lit?'"), "and 'too deep' was never answered"
    await say(client, 1002, "still there?", user=502)
    assert (await reply_in(client, 1002)).text().endswith("heard 'user502:still there?'")
    assert not client.closed
    harness.assert_alive()
    assert harness.process is not None
    assert TOKEN not in harness.process.log_text(), "a token in the URL is not logged"


def sign(body: bytes) -> str:
    return "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


def padded_card(size: int) -> bytes:
    """Wren's card PNG grown to ``size`` bytes by a private chunk of random bytes (which base64
    cannot shrink), so that its ``get_file`` answer is a frame past 16 MiB."""
    png = card_png_bytes(v3(WREN))
    filler = os.urandom(size - len(png) - 12)
    body = b"paDd" + filler
    chunk = struct.pack(">I", len(filler)) + body + struct.pack(">I", zlib.crc32(body))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


HTTP_POST = {
    "platforms": {"onebot": {"access_token": TOKEN, "http_post": True, "secret": SECRET}},
    "characters": {"max_import_mb": 20},
}


@pytest.mark.parametrize("bot", [HTTP_POST], indirect=True)
async def test_http_post_is_opt_in_with_the_token_or_signature_and_a_big_file_arrives(
    bot: tuple[Harness, OneBotClient],
) -> None:
    harness, client = bot
    assert served(harness) == (
        "websocket /onebot/v11/ws, POST /onebot/v11/http, /console/ (the web console, behind its login)"
    )

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{harness.port}") as http:

        async def post(text: str, headers: dict[str, str], *, self_id: int = SELF_ID, path: str = "") -> int:
            body = json.dumps(group_message(self_id, 1003, 503, text)).encode()
            signature = headers.pop("X-Signature", None)
            if signature is not None:
                headers["X-Signature"] = sign(body) if signature == "right" else signature
            headers = {"X-Self-ID": str(self_id), "Content-Type": "application/json", **headers}
            answer = await http.post(path or "/onebot/v11/http", content=body, headers=headers)
            return answer.status_code

        assert await post("no credentials", {}) == 401
        assert await post("wrong token", {"Authorization": "Bearer wrong"}) == 403
        assert await post("wrong signature", {"X-Signature": "sha1=" + "0" * 40}) == 403
        assert await post("old route", {"Authorization": f"Bearer {TOKEN}"}, path="/onebot/v11/") == 404
        await client.expect_no_message(within=1.0)

        assert await post("by token", {"Authorization": f"Bearer {TOKEN}"}) == 204
        assert (await reply_in(client, 1003)).text().endswith("heard 'user503:by token'")
        assert await post("by query", {}, path=f"/onebot/v11/http?access_token={TOKEN}") == 204
        assert (await reply_in(client, 1003)).text().endswith("heard 'user503:by query'")
        assert await post("by signature", {"X-Signature": "right"}) == 204
        assert (await reply_in(client, 1003)).text().endswith("heard 'user503:by signature'")

        bearer = {"X-Self-ID": str(SELF_ID), "Authorization": f"Bearer {TOKEN}"}
        for junk in ("[" * 10_000 + "]" * 10_000, '{"echo": "1", "status": "ok", "data": null}', "{no"):
            answer = await http.post("/onebot/v11/http", content=junk, headers=bearer)
            assert answer.status_code == 400, "only events come by POST, never API answers"

        # Authenticated, but for an account with no WebSocket: refused, and no bot kept for it.
        assert await post("ghost", {"Authorization": f"Bearer {TOKEN}"}, self_id=OTHER_ID) == 409
        other = await OneBotClient.connect(harness.url, self_id=OTHER_ID, access_token=TOKEN, timeout=10)
        await other.close()

    # A get_file answer past uvicorn's default 16 MiB frame (13 MB in base64) with max_import_mb = 20.
    big = client.receive_file("bigwren.png", padded_card(13_000_000))
    await client.send_group_message(1004, 601, "/character import bigwren", role="admin", segments=[big])
    fetched = await client.wait_for_call("get_file", timeout=30)
    assert len(fetched.response["data"]["base64"]) > 16 * 1024 * 1024  # type: ignore[index]
    imported = await client.wait_for_message(
        group_id=1004, predicate=lambda call: call.text().startswith("Imported"), timeout=90
    )
    assert imported.text().startswith("Imported Wren Calloway as bigwren (card-png)"), imported.text()
    assert not client.closed
    assert harness.process is not None
    assert TOKEN not in harness.process.log_text(), "a token in the URL is not logged"
