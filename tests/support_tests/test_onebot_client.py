"""Tests for :mod:`tests.support.onebot_client` against a real local WebSocket server.

The server plays the bot's side the way NoneBot's OneBot v11 adapter does: it rejects upgrades
without ``X-Self-ID`` or with a wrong token (HTTP 403), sends ``{"action", "params", "echo"}``
frames and reads results and events.  Events are validated with NoneBot's own pydantic models so
the shapes are exactly what the real adapter accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

import pytest
from nonebot.adapters.onebot.v11.event import (
    GroupMessageEvent,
    HeartbeatMetaEvent,
    LifecycleMetaEvent,
    PrivateMessageEvent,
)
from nonebot.compat import type_validate_python
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.support.onebot_client import (
    ActionFailed,
    ApiCall,
    OneBotClient,
    OneBotConnectError,
    image_segment,
    parse_cq,
    plain_text,
    to_cq,
)

SELF_ID = 42
GROUP = 777
USER = 1001


class FakeBotServer:
    """A minimal stand-in for NoneBot's reverse-WebSocket endpoint."""

    def __init__(self, access_token: str | None = None, port: int = 0) -> None:
        self.access_token = access_token
        self.port = port
        self.handshakes: list[Headers] = []
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.raw_frames: asyncio.Queue[str] = asyncio.Queue()
        self.connection: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()
        self._server: Server | None = None
        self._echo = 0

    async def __aenter__(self) -> Self:
        self._server = await serve(self._handler, "127.0.0.1", self.port, process_request=self._check)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/onebot/v11/ws"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(request.headers)
        if not request.headers.get("X-Self-ID"):
            return connection.respond(HTTPStatus.FORBIDDEN, "Missing X-Self-ID Header\n")
        if self.access_token and request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return connection.respond(HTTPStatus.FORBIDDEN, "Authorization Header is invalid\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        if not self.connection.done():
            self.connection.set_result(ws)
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                assert isinstance(frame, str)
                try:
                    data = json.loads(frame)
                except ValueError:
                    await self.raw_frames.put(frame)
                    continue
                await (self.events if "post_type" in data else self.results).put(data)

    async def ws(self) -> ServerConnection:
        return await asyncio.wait_for(asyncio.shield(self.connection), 5)

    async def send_call(self, action: str, **params: Any) -> str:
        self._echo += 1
        echo = str(self._echo)
        await (await self.ws()).send(json.dumps({"action": action, "params": params, "echo": echo}))
        return echo

    async def call(self, action: str, **params: Any) -> dict[str, Any]:
        echo = await self.send_call(action, **params)
        result = await asyncio.wait_for(self.results.get(), 5)
        assert result["echo"] == echo
        return result

    async def next_event(self, post_type: str | None = None) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.events.get(), 5)
            if post_type is None or event["post_type"] == post_type:
                return event


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[tuple[FakeBotServer, OneBotClient]]:
    """A server plus a connected client whose lifecycle event was already consumed.

    A context manager rather than async fixtures, so the client always lives on the test's own
    event loop whatever loop scopes the project's pytest-asyncio configuration picks.
    """
    async with (
        FakeBotServer(access_token="secret") as server,
        OneBotClient(server.url, self_id=SELF_ID, access_token="secret") as client,
    ):
        lifecycle = await server.next_event()
        assert lifecycle["meta_event_type"] == "lifecycle"
        yield server, client


@pytest.mark.asyncio
async def test_handshake_headers_and_lifecycle_event() -> None:
    async with FakeBotServer(access_token="secret") as bot_server:
        async with OneBotClient(bot_server.url, self_id=SELF_ID, access_token="secret") as onebot:
            headers = bot_server.handshakes[-1]
            assert headers["X-Self-ID"] == "42"
            assert headers["X-Client-Role"] == "Universal"
            assert headers["Authorization"] == "Bearer secret"
            assert "OneBot" in headers["User-Agent"]
            event = await bot_server.next_event()
            parsed = type_validate_python(LifecycleMetaEvent, event)
            assert parsed.sub_type == "connect"
            assert parsed.self_id == SELF_ID
            assert not onebot.closed
        assert onebot.closed


@pytest.mark.asyncio
async def test_rejected_connection_reports_status() -> None:
    async with FakeBotServer(access_token="secret") as bot_server:
        with pytest.raises(OneBotConnectError) as excinfo:
            await OneBotClient.connect(bot_server.url, self_id=SELF_ID, access_token="wrong", timeout=0.5)
        assert excinfo.value.last_status == 403


@pytest.mark.asyncio
async def test_retries_until_the_server_starts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connecting = asyncio.create_task(
        OneBotClient.connect(f"ws://127.0.0.1:{port}/onebot/v11/ws", self_id=SELF_ID, timeout=10)
    )
    await asyncio.sleep(0.4)
    assert not connecting.done()
    async with FakeBotServer(port=port) as server:
        onebot = await connecting
        try:
            assert (await server.next_event())["meta_event_type"] == "lifecycle"
            assert "Authorization" not in server.handshakes[-1]
        finally:
            await onebot.close()


@pytest.mark.asyncio
async def test_connect_gives_up_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OneBotConnectError) as excinfo:
        await OneBotClient.connect(f"ws://127.0.0.1:{port}/", timeout=0.3)
    assert excinfo.value.last_status is None


@pytest.mark.asyncio
async def test_api_calls_are_answered_with_echo() -> None:
    async with connected() as (bot_server, client):
        sent = await bot_server.call(
            "send_group_msg", group_id=GROUP, message=[{"type": "text", "data": {"text": "hello group"}}]
        )
        assert sent["status"] == "ok"
        assert sent["retcode"] == 0
        message_id = sent["data"]["message_id"]
        assert isinstance(message_id, int)

        login = await bot_server.call("get_login_info")
        assert login["data"] == {"user_id": SELF_ID, "nickname": "bot"}

        unknown = await bot_server.call("set_group_card", group_id=GROUP, user_id=USER, card="x")
        assert unknown["status"] == "ok"
        assert unknown["data"] is None

        fetched = await bot_server.call("get_msg", message_id=message_id)
        assert fetched["data"]["sender"]["user_id"] == SELF_ID
        assert plain_text(fetched["data"]["message"]) == "hello group"

        missing = await bot_server.call("get_msg", message_id=1)
        assert missing["status"] == "failed"

        private = await bot_server.call("send_private_msg", user_id=USER, message="psst")
        assert private["data"]["message_id"] == message_id + 1

        call = await client.wait_for_message(group_id=GROUP)
        assert call.action == "send_group_msg"
        assert call.text() == "hello group"
        assert call.response is not None
        assert call.response["data"] == {"message_id": message_id}
        assert call.echo == sent["echo"]
        assert [c.action for c in client.calls] == [
            "send_group_msg",
            "get_login_info",
            "set_group_card",
            "get_msg",
            "get_msg",
            "send_private_msg",
        ]
        assert (await client.wait_for_message(user_id=USER)).text() == "psst"


@pytest.mark.asyncio
async def test_scripted_failures_and_custom_handlers() -> None:
    async with connected() as (bot_server, client):
        client.fail_action("send_group_msg", retcode=1200, message="risk control", times=2)
        for _ in range(2):
            failed = await bot_server.call("send_group_msg", group_id=GROUP, message="x")
            assert failed["status"] == "failed"
            assert failed["retcode"] == 1200
            assert failed["data"] is None
        assert (await bot_server.call("send_group_msg", group_id=GROUP, message="x"))["status"] == "ok"
        attempts = [c for c in client.calls if c.action == "send_group_msg"]
        assert [(c.failed, c.ok) for c in attempts] == [(True, False), (True, False), (False, True)]
        delivered = await client.wait_for_message(group_id=GROUP)
        assert delivered is attempts[2]
        await client.expect_no_message(within=0.05)
        assert (await client.wait_for_call("send_group_msg")) is attempts[0]

        async def group_list(params: dict[str, Any]) -> list[dict[str, Any]]:
            await asyncio.sleep(0.01)
            return [{"group_id": GROUP, "group_name": "test"}]

        client.on_action("get_group_list", group_list)
        assert (await bot_server.call("get_group_list"))["data"][0]["group_id"] == GROUP

        def refuse(params: dict[str, Any]) -> None:
            raise ActionFailed(1403, "no permission")

        client.on_action("set_group_ban", refuse)
        refused = await bot_server.call("set_group_ban", group_id=GROUP, user_id=USER)
        assert (refused["status"], refused["retcode"], refused["message"]) == (
            "failed",
            1403,
            "no permission",
        )

        client.on_action("set_group_ban", None)
        assert (await bot_server.call("set_group_ban", group_id=GROUP, user_id=USER))["status"] == "ok"
        assert client.handler_errors == []


@pytest.mark.asyncio
async def test_broken_handler_surfaces_when_the_block_exits() -> None:
    async with FakeBotServer(access_token="secret") as bot_server:

        def broken(params: dict[str, Any]) -> None:
            raise KeyError("oops")

        async def session() -> None:
            async with OneBotClient(bot_server.url, self_id=SELF_ID, access_token="secret") as onebot:
                onebot.on_action("get_status", broken)
                result = await bot_server.call("get_status")
                assert result["retcode"] == 1500

        with pytest.raises(RuntimeError, match="handler raised"):
            await session()


@pytest.mark.asyncio
async def test_group_message_event_shape() -> None:
    async with connected() as (bot_server, client):
        first = await client.send_group_message(
            GROUP, USER, "hello", at_bot=True, nickname="Alice", role="admin"
        )
        event = await bot_server.next_event("message")
        assert event["message"] == [
            {"type": "at", "data": {"qq": "42"}},
            {"type": "text", "data": {"text": " hello"}},
        ]
        assert event["raw_message"] == "[CQ:at,qq=42] hello"
        parsed = type_validate_python(GroupMessageEvent, event)
        assert (parsed.message_id, parsed.group_id, parsed.user_id, parsed.self_id) == (
            first,
            GROUP,
            USER,
            SELF_ID,
        )
        assert parsed.sender.nickname == "Alice"
        assert parsed.sender.role == "admin"
        assert parsed.sub_type == "normal"
        assert parsed.font == 0

        second = await client.send_group_message(GROUP, USER, "and [this], & that", reply_to=first)
        event = await bot_server.next_event("message")
        assert event["message"][0] == {"type": "reply", "data": {"id": str(first)}}
        assert event["raw_message"] == f"[CQ:reply,id={first}]and &#91;this&#93;, &amp; that"
        assert second != first
        assert (
            type_validate_python(GroupMessageEvent, event).message.extract_plain_text()
            == "and [this], & that"
        )

        await client.send_group_message(
            GROUP, USER, segments=[image_segment("a.png", "http://127.0.0.1:1/a.png")]
        )
        event = await bot_server.next_event("message")
        assert [seg["type"] for seg in event["message"]] == ["image"]
        assert event["raw_message"].startswith("[CQ:image,file=a.png")
        type_validate_python(GroupMessageEvent, event)

        member = await bot_server.call("get_group_member_info", group_id=GROUP, user_id=USER)
        assert (member["data"]["nickname"], member["data"]["role"]) == ("Alice", "admin")
        client.set_member(GROUP, 2002, nickname="Carol", role="owner", title="boss")
        carol = await bot_server.call("get_group_member_info", group_id=GROUP, user_id=2002)
        assert (carol["data"]["nickname"], carol["data"]["role"], carol["data"]["title"]) == (
            "Carol",
            "owner",
            "boss",
        )
        members = await bot_server.call("get_group_member_list", group_id=GROUP)
        assert sorted(m["user_id"] for m in members["data"]) == [USER, 2002]
        quoted = await bot_server.call("get_msg", message_id=first)
        assert quoted["data"]["sender"]["user_id"] == USER
        assert quoted["data"]["real_id"] == first


@pytest.mark.asyncio
async def test_private_message_and_raw_frames() -> None:
    async with connected() as (bot_server, client):
        message_id = await client.send_private_message(USER, "hi bot", nickname="Bob")
        event = await bot_server.next_event("message")
        parsed = type_validate_python(PrivateMessageEvent, event)
        assert (parsed.message_id, parsed.user_id, parsed.sub_type) == (message_id, USER, "friend")
        assert parsed.sender.nickname == "Bob"

        await client.send_raw("{not json")
        assert await asyncio.wait_for(bot_server.raw_frames.get(), 5) == "{not json"

        await client.send_event({"post_type": "notice", "notice_type": "group_recall", "custom": True})
        assert (await bot_server.next_event("notice"))["custom"] is True
        assert client.sent_events[-1]["notice_type"] == "group_recall"


@pytest.mark.asyncio
async def test_heartbeats() -> None:
    async with FakeBotServer(access_token="secret") as bot_server:
        async with OneBotClient(
            bot_server.url, self_id=SELF_ID, access_token="secret", heartbeat_interval=0.05
        ):
            await bot_server.next_event()
            heartbeat = await bot_server.next_event()
            parsed = type_validate_python(HeartbeatMetaEvent, heartbeat)
            assert parsed.status.online
            assert parsed.interval == 50


@pytest.mark.asyncio
async def test_wait_semantics() -> None:
    async with connected() as (bot_server, client):
        await bot_server.send_call(
            "send_msg", message_type="group", group_id=GROUP, user_id=USER, message="one"
        )
        await bot_server.send_call(
            "send_msg", message_type="group", group_id=GROUP, user_id=USER, message="two"
        )
        await bot_server.send_call("send_msg", message_type="private", user_id=USER, message="dm")

        assert (await client.wait_for_message(group_id=GROUP)).text() == "one"
        assert (await client.wait_for_message(group_id=GROUP)).text() == "two"
        await client.expect_no_message(group_id=GROUP, within=0.1)
        with pytest.raises(AssertionError, match="unexpected"):
            await client.expect_no_message(within=0.1)
        assert [c.text() for c in client.pending_calls()] == ["dm"]

        mark = client.mark()
        with pytest.raises(AssertionError, match="timed out"):
            await client.wait_for_message(user_id=USER, after=mark, timeout=0.1)
        assert (await client.wait_for_message(user_id=USER)).text() == "dm"

        waiter = asyncio.create_task(
            client.wait_for_message(group_id=GROUP, predicate=lambda c: "late" in c.text())
        )
        await asyncio.sleep(0.05)
        await bot_server.send_call("send_group_msg", group_id=GROUP, message="not this")
        await bot_server.send_call("send_group_msg", group_id=GROUP, message="late reply")
        assert (await waiter).text() == "late reply"
        assert (await client.wait_for_message(group_id=GROUP)).text() == "not this"

        batch_start = client.mark()
        for text in ("a", "b"):
            await bot_server.send_call("send_group_msg", group_id=GROUP, message=text)
        batch = await client.wait_for_messages(2, group_id=GROUP, after=batch_start)
        assert [c.text() for c in batch] == ["a", "b"]

        with pytest.raises(ValueError, match="not both"):
            await client.wait_for_message(group_id=GROUP, user_id=USER, timeout=0.1)


@pytest.mark.asyncio
async def test_server_side_close_is_detected() -> None:
    async with connected() as (bot_server, client):
        await (await bot_server.ws()).close(1008, "Duplicate X-Self-ID")
        await client.wait_closed(5)
        assert client.closed
        assert client.close_code == 1008
        assert client.close_reason == "Duplicate X-Self-ID"
        with pytest.raises(AssertionError, match="connection closed"):
            await client.wait_for_call("send_group_msg", timeout=5)


def test_message_parsing_helpers() -> None:
    cq = "[CQ:reply,id=9][CQ:at,qq=5] hi &#91;x&#93; &amp; [CQ:image,file=a&#44;b.png,url=http://h/a]"
    segments = parse_cq(cq)
    assert [s["type"] for s in segments] == ["reply", "at", "text", "image"]
    assert segments[3]["data"] == {"file": "a,b.png", "url": "http://h/a"}
    assert to_cq(segments) == cq
    call = ApiCall(
        index=0, action="send_group_msg", params={"group_id": "5", "message": cq}, echo="1", received_at=0
    )
    assert call.text() == " hi [x] & "
    assert call.group_id == 5
    assert call.message_type == "group"
    assert call.at_targets() == ["5"]
    assert call.reply_to() == 9
    assert call.segment_types() == ["reply", "at", "text", "image"]

    escaped = ApiCall(0, "send_msg", {"user_id": 1, "message": "[CQ:at,qq=1]", "auto_escape": True}, None, 0)
    assert escaped.text() == "[CQ:at,qq=1]"
    assert escaped.message_type == "private"
    single = ApiCall(
        0, "send_msg", {"group_id": 2, "message": {"type": "text", "data": {"text": "s"}}}, None, 0
    )
    assert single.text() == "s"
    assert single.message_type == "group"
    assert ApiCall(0, "get_status", {}, None, 0).message_type is None
