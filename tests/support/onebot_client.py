"""A OneBot v11 implementation for tests: plays NapCat/Lagrange against the bot.

In production a OneBot v11 implementation (NapCat, Lagrange, go-cqhttp...) connects *to* the
bot's reverse WebSocket (``ws://HOST:PORT/onebot/v11/ws``), pushes events (messages, notices,
meta events) and answers the API calls (``send_group_msg`` ...) the bot makes over the same
"Universal" connection.  :class:`OneBotClient` does exactly that over a real socket, so
end-to-end tests exercise NoneBot's adapter, event parsing and reply path unchanged.

Protocol notes, from the OneBot 11 spec and ``nonebot.adapters.onebot.v11.adapter``:

* Handshake headers: ``X-Self-ID`` (required by NoneBot, the connection is refused without it,
  and a second connection with the same id is refused while the first is alive),
  ``X-Client-Role: Universal``, ``User-Agent`` and ``Authorization: Bearer <token>`` when an
  access token is configured.  NoneBot rejects before accepting, which the client sees as an
  HTTP 403 to the upgrade request.
* API calls arrive as ``{"action", "params", "echo"}``; NoneBot's ``echo`` is a string sequence
  number and must be returned verbatim.  Results are ``{"status": "ok", "retcode": 0, "data",
  "echo"}``; NoneBot raises ``ActionFailed`` only when ``status == "failed"``.
* Any frame that is not valid JSON makes NoneBot drop the whole connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

__all__ = [
    "SEND_ACTIONS",
    "ActionFailed",
    "ActionHandler",
    "ApiCall",
    "OneBotClient",
    "OneBotConnectError",
    "Segment",
    "at_segment",
    "escape_cq",
    "face_segment",
    "file_segment",
    "image_segment",
    "message_segments",
    "parse_cq",
    "plain_text",
    "reply_segment",
    "text_segment",
    "to_cq",
    "unescape_cq",
]

Segment = dict[str, Any]
"""An array-format message segment: ``{"type": "text", "data": {"text": "hi"}}``."""

ActionHandler = Callable[[dict[str, Any]], Any]
"""Receives an API call's ``params``; returns its ``data`` (or an awaitable of it).

Raise :class:`ActionFailed` to answer with a failure instead.
"""

SEND_ACTIONS = frozenset({"send_group_msg", "send_private_msg", "send_msg"})
"""Actions that post a chat message; NoneBot's ``bot.send(event, ...)`` uses ``send_msg``."""

DEFAULT_USER_AGENT = "OneBotTestClient/1.0 (OneBot v11; like NapCat)"

_CQ_CODE = re.compile(r"\[CQ:(?P<type>[a-zA-Z0-9-_.]+)(?P<params>(?:,[a-zA-Z0-9-_.]+=[^,\]]*)*),?\]")


# ---------------------------------------------------------------------- message helpers


def escape_cq(text: str, *, escape_comma: bool = False) -> str:
    """Escape text for a CQ-code string; commas only matter inside CQ parameter values."""
    text = text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")
    return text.replace(",", "&#44;") if escape_comma else text


def unescape_cq(text: str) -> str:
    return text.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")


def text_segment(text: str) -> Segment:
    return {"type": "text", "data": {"text": text}}


def at_segment(qq: int | str) -> Segment:
    """An @-mention; QQ clients send ``qq`` as a string (``"all"`` for @everyone)."""
    return {"type": "at", "data": {"qq": str(qq)}}


def reply_segment(message_id: int | str) -> Segment:
    return {"type": "reply", "data": {"id": str(message_id)}}


def face_segment(face_id: int | str) -> Segment:
    return {"type": "face", "data": {"id": str(face_id)}}


def file_segment(name: str, file_id: str, *, size: int | None = None, url: str | None = None) -> Segment:
    """A file sent in a chat as NapCat reports it; without ``url`` the bot must call ``get_file``."""
    data: dict[str, Any] = {"file": name, "file_id": file_id}
    if size is not None:
        data["file_size"] = str(size)
    if url is not None:
        data["url"] = url
    return {"type": "file", "data": data}


def image_segment(file: str = "test.jpg", url: str | None = None, *, summary: str = "[图片]") -> Segment:
    """An incoming image as NapCat reports it; ``url`` should point at a local server in tests."""
    data: dict[str, Any] = {"file": file, "subType": 0, "summary": summary}
    if url is not None:
        data["url"] = url
    return {"type": "image", "data": data}


def parse_cq(message: str) -> list[Segment]:
    """Parse a CQ-code string (``"hi [CQ:at,qq=1]"``) into array-format segments."""
    segments: list[Segment] = []
    start = 0
    for match in _CQ_CODE.finditer(message):
        if match.start() > start:
            segments.append(text_segment(unescape_cq(message[start : match.start()])))
        data: dict[str, Any] = {}
        for pair in filter(None, match["params"].split(",")):
            key, _, value = pair.partition("=")
            data[key] = unescape_cq(value)
        segments.append({"type": match["type"], "data": data})
        start = match.end()
    if start < len(message):
        segments.append(text_segment(unescape_cq(message[start:])))
    return segments


def to_cq(segments: Iterable[Segment]) -> str:
    """Render segments as a CQ-code string: the ``raw_message`` field of an event."""
    parts: list[str] = []
    for segment in segments:
        data = segment.get("data") or {}
        if segment.get("type") == "text":
            parts.append(escape_cq(str(data.get("text", ""))))
            continue
        params = "".join(
            f",{k}={escape_cq(str(v), escape_comma=True)}" for k, v in data.items() if v is not None
        )
        parts.append(f"[CQ:{segment.get('type')}{params}]")
    return "".join(parts)


def message_segments(message: Any, *, auto_escape: bool = False) -> list[Segment]:
    """Normalise a ``message`` API parameter into segments.

    OneBot accepts a CQ-code string (taken literally when ``auto_escape`` is set), a segment
    array, or a single segment object; NoneBot sends an array when given a ``Message``/
    ``MessageSegment`` and passes a plain ``str`` through unchanged.
    """
    if message is None:
        return []
    if isinstance(message, str):
        return [text_segment(message)] if auto_escape else parse_cq(message)
    if isinstance(message, Mapping):
        return [dict(message)]
    if isinstance(message, Sequence):
        return [dict(seg) if isinstance(seg, Mapping) else text_segment(str(seg)) for seg in message]
    return [text_segment(str(message))]


def plain_text(message: Any, *, auto_escape: bool = False) -> str:
    """Concatenated text segments of a ``message`` in any accepted form."""
    return "".join(
        str((seg.get("data") or {}).get("text", ""))
        for seg in message_segments(message, auto_escape=auto_escape)
        if seg.get("type") == "text"
    )


# ---------------------------------------------------------------------- API calls


class ActionFailed(Exception):
    """Raise from an :data:`ActionHandler` to answer ``status: failed`` with ``retcode``."""

    def __init__(self, retcode: int = 100, message: str = "action failed") -> None:
        super().__init__(f"retcode={retcode}: {message}")
        self.retcode = retcode
        self.message = message


class OneBotConnectError(ConnectionError):
    """The bot's WebSocket did not accept the connection before the deadline.

    ``last_status`` is the HTTP status of the last rejected upgrade (403 for a wrong access
    token, a missing ``X-Self-ID`` or a duplicate self id), ``None`` if the port never answered.
    """

    def __init__(self, message: str, last_status: int | None) -> None:
        super().__init__(message)
        self.last_status = last_status


@dataclass
class ApiCall:
    """One API request the bot made, with the answer the client gave.

    ``index`` is the position in :attr:`OneBotClient.calls`.  ``consumed`` is set when a
    ``wait_for_*`` helper returned this call, so the next wait finds the *next* reply.
    """

    index: int
    action: str
    params: dict[str, Any]
    echo: Any
    received_at: float
    response: dict[str, Any] | None = None
    consumed: bool = False

    @property
    def is_message(self) -> bool:
        return self.action in SEND_ACTIONS

    @property
    def answered(self) -> bool:
        return self.response is not None

    @property
    def ok(self) -> bool:
        """Answered with ``status: ok``; ``False`` while unanswered or after a failure answer."""
        return self.response is not None and self.response.get("status") == "ok"

    @property
    def failed(self) -> bool:
        """Answered with ``status: failed`` (scripted failure or a handler's ``ActionFailed``)."""
        return self.response is not None and self.response.get("status") == "failed"

    @property
    def group_id(self) -> int | None:
        return _optional_int(self.params.get("group_id"))

    @property
    def user_id(self) -> int | None:
        return _optional_int(self.params.get("user_id"))

    @property
    def message_type(self) -> str | None:
        """``"group"``/``"private"`` for send actions (inferred for ``send_msg``), else ``None``."""
        if self.action == "send_group_msg":
            return "group"
        if self.action == "send_private_msg":
            return "private"
        if self.action == "send_msg":
            explicit = self.params.get("message_type")
            if explicit in {"group", "private"}:
                return str(explicit)
            return "group" if self.params.get("group_id") is not None else "private"
        return None

    def segments(self) -> list[Segment]:
        """The ``message`` parameter as array-format segments, whatever form the bot used."""
        return message_segments(self.params.get("message"), auto_escape=bool(self.params.get("auto_escape")))

    def text(self) -> str:
        """Plain text of the ``message`` parameter (CQ codes and non-text segments dropped)."""
        return "".join(
            str((seg.get("data") or {}).get("text", ""))
            for seg in self.segments()
            if seg.get("type") == "text"
        )

    def segment_types(self) -> list[str]:
        return [str(seg.get("type")) for seg in self.segments()]

    def at_targets(self) -> list[str]:
        """``qq`` of every ``at`` segment, as strings."""
        return [str((seg.get("data") or {}).get("qq")) for seg in self.segments() if seg.get("type") == "at"]

    def reply_to(self) -> int | None:
        """The message id quoted by a ``reply`` segment, if any."""
        for seg in self.segments():
            if seg.get("type") == "reply":
                return _optional_int((seg.get("data") or {}).get("id"))
        return None

    def describe(self) -> str:
        target = f" group={self.group_id}" if self.group_id is not None else ""
        target += f" user={self.user_id}" if self.user_id is not None else ""
        text = f" {self.text()[:60]!r}" if self.is_message else ""
        flag = " (consumed)" if self.consumed else ""
        return f"#{self.index} {self.action}{target}{text}{flag}"


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class _ScriptedFailure:
    retcode: int
    message: str
    remaining: int | None


CallPredicate = Callable[[ApiCall], bool]


@dataclass
class _Waiter:
    actions: frozenset[str] | None
    predicate: CallPredicate | None
    after: int

    def matches(self, call: ApiCall) -> bool:
        if call.consumed or call.index < self.after:
            return False
        if self.actions is not None and call.action not in self.actions:
            return False
        return self.predicate is None or self.predicate(call)


def _action_set(action: str | Collection[str] | None) -> frozenset[str] | None:
    if action is None:
        return None
    if isinstance(action, str):
        return frozenset({action})
    return frozenset(action)


# ---------------------------------------------------------------------- the client


@dataclass
class _Member:
    nickname: str
    card: str = ""
    role: str = "member"
    extra: dict[str, Any] = field(default_factory=dict)


class OneBotClient:
    """The OneBot v11 side of a reverse-WebSocket connection to the bot.

    Create and connect with ``await OneBotClient.connect(url, self_id=...)`` or use
    ``async with OneBotClient(url, self_id=...) as client``.  Everything runs on the caller's
    event loop; the background reader answers the bot's API calls while the test awaits.
    """

    def __init__(
        self,
        url: str,
        *,
        self_id: int = 10_000,
        access_token: str | None = None,
        nickname: str = "bot",
        user_agent: str = DEFAULT_USER_AGENT,
        heartbeat_interval: float | None = None,
        send_lifecycle: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.self_id = self_id
        self.access_token = access_token
        self.nickname = nickname
        self.user_agent = user_agent
        self.heartbeat_interval = heartbeat_interval
        self.send_lifecycle = send_lifecycle
        self.extra_headers = dict(extra_headers or {})
        self.calls: list[ApiCall] = []
        """Every API call from the bot, in arrival order (never cleared by waits)."""
        self.sent_events: list[dict[str, Any]] = []
        """Every event this client pushed, in order (meta events included)."""
        self.other_frames: list[Any] = []
        """JSON frames from the bot that were not API calls (unexpected for NoneBot)."""
        self.handler_errors: list[BaseException] = []
        """Exceptions raised by custom handlers; re-raised when the ``async with`` block exits."""
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._handlers: dict[str, ActionHandler] = {}
        self._failures: dict[str, list[_ScriptedFailure]] = {}
        self._message_ids = itertools.count(random.randint(100_000_000, 1_000_000_000))
        self._messages: dict[int, dict[str, Any]] = {}
        self._members: dict[tuple[int, int], _Member] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        """Files users sent, by ``file_id``: what ``get_file`` returns (see :meth:`receive_file`)."""

    # ------------------------------------------------------------------ connection

    @property
    def handshake_headers(self) -> dict[str, str]:
        """Headers sent with the WebSocket upgrade (``User-Agent`` is added by websockets)."""
        headers = {"X-Self-ID": str(self.self_id), "X-Client-Role": "Universal"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        headers.update(self.extra_headers)
        return headers

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        self_id: int = 10_000,
        access_token: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
        **kwargs: Any,
    ) -> OneBotClient:
        """Create a client and connect it, retrying until the bot accepts or ``timeout``."""
        client = cls(url, self_id=self_id, access_token=access_token, **kwargs)
        return await client.start(timeout)

    async def start(self, timeout: float = 30.0, retry_interval: float = 0.2) -> Self:  # noqa: ASYNC109
        """Connect (retrying while the bot is still starting), then announce ``lifecycle.connect``.

        Every failure is retried until the deadline, including HTTP rejections: right after a
        previous connection with the same self id closes, NoneBot may briefly still consider it
        alive and refuse with 403.  A test expecting a rejection should pass a short timeout and
        check :attr:`OneBotConnectError.last_status`.
        """
        if self._ws is not None:
            raise RuntimeError("OneBotClient already started")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: BaseException | None = None
        last_status: int | None = None
        while True:
            remaining = deadline - loop.time()
            try:
                self._ws = await connect(
                    self.url,
                    additional_headers=self.handshake_headers,
                    user_agent_header=self.user_agent,
                    proxy=None,
                    compression=None,
                    open_timeout=max(0.5, min(5.0, remaining)),
                    ping_interval=None,
                    close_timeout=2,
                    max_size=None,
                )
                break
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                last_error = exc
                if isinstance(exc, InvalidStatus):
                    last_status = exc.response.status_code
            if loop.time() + retry_interval >= deadline:
                raise OneBotConnectError(
                    f"could not connect to {self.url} within {timeout}s: {last_error!r}", last_status
                ) from last_error
            await asyncio.sleep(retry_interval)
        self._reader = asyncio.create_task(self._read_loop(self._ws), name=f"onebot-reader-{self.self_id}")
        if self.send_lifecycle:
            await self.send_event(self._meta_event("lifecycle", sub_type="connect"))
        if self.heartbeat_interval:
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(self.heartbeat_interval))
        return self

    async def close(self) -> None:
        """Close the connection and stop every background task.  Idempotent."""
        tasks: list[asyncio.Task[None]] = list(self._answer_tasks)
        if self._heartbeat is not None:
            tasks.append(self._heartbeat)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        self._closed.set()

    async def __aenter__(self) -> Self:
        if self._ws is None:
            await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
        if exc is None and self.handler_errors:
            raise RuntimeError("a custom OneBot action handler raised") from self.handler_errors[0]

    @property
    def closed(self) -> bool:
        """True once the connection is gone, whoever closed it."""
        return self._closed.is_set()

    @property
    def close_code(self) -> int | None:
        """WebSocket close code from the bot (1008 for NoneBot's policy rejections), else ``None``."""
        return None if self._ws is None else self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return None if self._ws is None else self._ws.close_reason

    async def wait_closed(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the bot drops the connection (e.g. after an invalid frame or shutdown)."""
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    def _require_ws(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("OneBotClient is not connected; call start() first")
        return self._ws

    # ------------------------------------------------------------------ reading and answering

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                text = frame.decode() if isinstance(frame, bytes) else frame
                try:
                    data: Any = json.loads(text)
                except ValueError:
                    self.other_frames.append(text)
                    continue
                if isinstance(data, dict) and isinstance(data.get("action"), str):
                    await self._record_call(data)
                else:
                    self.other_frames.append(data)
        except ConnectionClosed:
            pass
        finally:
            self._closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def _record_call(self, frame: dict[str, Any]) -> None:
        params = frame.get("params")
        call = ApiCall(
            index=len(self.calls),
            action=frame["action"],
            params=params if isinstance(params, dict) else {},
            echo=frame.get("echo"),
            received_at=time.time(),
        )
        self.calls.append(call)
        task = asyncio.create_task(self._answer(call, has_echo="echo" in frame))
        self._answer_tasks.add(task)
        task.add_done_callback(self._answer_tasks.discard)
        async with self._changed:
            self._changed.notify_all()

    async def _answer(self, call: ApiCall, *, has_echo: bool) -> None:
        """Compute and send the result frame; runs as its own task so a slow custom handler
        never stalls the reader (the bot may issue several calls concurrently)."""
        try:
            data = await self._dispatch(call)
            response: dict[str, Any] = {"status": "ok", "retcode": 0, "data": data}
        except ActionFailed as failure:
            response = _failure_response(failure.retcode, failure.message)
        except Exception as exc:
            self.handler_errors.append(exc)
            response = _failure_response(1500, f"test handler raised {exc!r}")
        if has_echo:
            response["echo"] = call.echo
        call.response = response
        with contextlib.suppress(ConnectionClosed):
            await self._require_ws().send(json.dumps(response, ensure_ascii=False))
        async with self._changed:
            self._changed.notify_all()

    async def _dispatch(self, call: ApiCall) -> Any:
        scripted = self._failures.get(call.action)
        if scripted:
            failure = scripted[0]
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    scripted.pop(0)
            raise ActionFailed(failure.retcode, failure.message)
        handler = self._handlers.get(call.action)
        if handler is not None:
            result = handler(call.params)
            if inspect.isawaitable(result):
                result = await result
            return result
        builtin = getattr(self, f"_builtin_{call.action}", None)
        if builtin is not None:
            return builtin(call)
        return None

    def on_action(self, action: str, handler: ActionHandler | None) -> None:
        """Answer ``action`` with ``handler(params)`` (sync or async); ``None`` restores the default.

        A custom handler for a send action replaces message-id allocation too, so it should
        return ``{"message_id": ...}`` like the real implementations do.
        """
        if handler is None:
            self._handlers.pop(action, None)
        else:
            self._handlers[action] = handler

    def fail_action(
        self, action: str, *, retcode: int = 100, message: str = "scripted failure", times: int | None = 1
    ) -> None:
        """Answer the next ``times`` calls of ``action`` with ``status: failed`` (``None`` = forever).

        NoneBot turns such an answer into ``ActionFailed`` at the ``await bot.call_api`` site.
        """
        self._failures.setdefault(action, []).append(_ScriptedFailure(retcode, message, times))

    def clear_failures(self) -> None:
        self._failures.clear()

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def set_member(
        self,
        group_id: int,
        user_id: int,
        *,
        nickname: str | None = None,
        card: str = "",
        role: str = "member",
        **extra: Any,
    ) -> None:
        """Register a group member for ``get_group_member_info``/``get_group_member_list``
        before (or without) them speaking; ``extra`` fields are merged into the answer."""
        self._members[(group_id, user_id)] = _Member(nickname or f"user{user_id}", card, role, dict(extra))

    # Built-in answers for the calls NoneBot and typical plugins make.  ``getattr`` dispatch
    # keeps each one next to its realistic response shape.

    def _record_outgoing(self, call: ApiCall) -> dict[str, Any]:
        message_id = self.next_message_id()
        message_type = call.message_type or "private"
        stored: dict[str, Any] = {
            "time": int(time.time()),
            "message_type": message_type,
            "message_id": message_id,
            "real_id": message_id,
            "sender": {"user_id": self.self_id, "nickname": self.nickname},
            "message": call.segments(),
            "raw_message": to_cq(call.segments()),
        }
        if message_type == "group" and call.group_id is not None:
            stored["group_id"] = call.group_id
        self._messages[message_id] = stored
        return {"message_id": message_id}

    def _builtin_send_group_msg(self, call: ApiCall) -> Any:
        return self._record_outgoing(call)

    def _builtin_send_private_msg(self, call: ApiCall) -> Any:
        return self._record_outgoing(call)

    def _builtin_send_msg(self, call: ApiCall) -> Any:
        return self._record_outgoing(call)

    def _builtin_get_login_info(self, call: ApiCall) -> Any:
        return {"user_id": self.self_id, "nickname": self.nickname}

    def _builtin_get_msg(self, call: ApiCall) -> Any:
        """NoneBot calls ``get_msg`` for every incoming message with a ``reply`` segment, to
        decide whether the quoted message was the bot's own (which sets ``to_me``)."""
        message_id = _optional_int(call.params.get("message_id"))
        stored = self._messages.get(message_id) if message_id is not None else None
        if stored is None:
            raise ActionFailed(1404, f"message {message_id} not found")
        return stored

    def receive_file(self, name: str, data: bytes) -> Segment:
        """Keep a file as if a user had sent it, for ``get_file``; returns the message segment."""
        file_id = f"{len(self.files) + 1:04d}{name}"
        self.files[file_id] = (name, data)
        return file_segment(name, file_id, size=len(data))

    def _builtin_get_file(self, call: ApiCall) -> Any:
        """NapCat's ``get_file``: the file's name, size and (with base64 enabled) its bytes."""
        found = self.files.get(str(call.params.get("file_id") or call.params.get("file")))
        if found is None:
            raise ActionFailed(1404, "file not found")
        name, data = found
        return {
            "file": "",
            "file_name": name,
            "file_size": str(len(data)),
            "base64": base64.b64encode(data).decode(),
        }

    def _builtin_upload_group_file(self, call: ApiCall) -> Any:
        return None

    def _builtin_upload_private_file(self, call: ApiCall) -> Any:
        return None

    async def send_group_upload(self, group_id: int, user_id: int, file: Mapping[str, Any]) -> None:
        """go-cqhttp's notice of a file put in the group's file area (id, name, size, busid)."""
        await self.send_event(
            {
                "time": int(time.time()),
                "self_id": self.self_id,
                "post_type": "notice",
                "notice_type": "group_upload",
                "group_id": group_id,
                "user_id": user_id,
                "file": dict(file),
            }
        )

    def _builtin_get_status(self, call: ApiCall) -> Any:
        return {"online": True, "good": True}

    def _builtin_get_version_info(self, call: ApiCall) -> Any:
        return {"app_name": "onebot-test-client", "app_version": "1.0.0", "protocol_version": "v11"}

    def _builtin_can_send_image(self, call: ApiCall) -> Any:
        return {"yes": True}

    def _builtin_can_send_record(self, call: ApiCall) -> Any:
        return {"yes": True}

    def _builtin_get_stranger_info(self, call: ApiCall) -> Any:
        user_id = _optional_int(call.params.get("user_id")) or 0
        known = next((m for (_, uid), m in self._members.items() if uid == user_id), None)
        nickname = known.nickname if known else f"user{user_id}"
        return {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}

    def _builtin_get_group_info(self, call: ApiCall) -> Any:
        group_id = _optional_int(call.params.get("group_id")) or 0
        members = sum(1 for gid, _ in self._members if gid == group_id)
        return {
            "group_id": group_id,
            "group_name": f"group{group_id}",
            "member_count": members + 1,
            "max_member_count": 500,
        }

    def _builtin_get_group_member_info(self, call: ApiCall) -> Any:
        group_id = _optional_int(call.params.get("group_id")) or 0
        user_id = _optional_int(call.params.get("user_id")) or 0
        if user_id == self.self_id:
            member = _Member(self.nickname)
        else:
            member = self._members.get((group_id, user_id)) or _Member(f"user{user_id}")
        return self._member_info(group_id, user_id, member)

    def _builtin_get_group_member_list(self, call: ApiCall) -> Any:
        group_id = _optional_int(call.params.get("group_id")) or 0
        return [self._member_info(gid, uid, m) for (gid, uid), m in self._members.items() if gid == group_id]

    def _member_info(self, group_id: int, user_id: int, member: _Member) -> dict[str, Any]:
        now = int(time.time())
        return {
            "group_id": group_id,
            "user_id": user_id,
            "nickname": member.nickname,
            "card": member.card,
            "sex": "unknown",
            "age": 0,
            "area": "",
            "join_time": now - 86_400,
            "last_sent_time": now,
            "level": "1",
            "role": member.role,
            "unfriendly": False,
            "title": "",
            "title_expire_time": 0,
            "card_changeable": False,
            **member.extra,
        }

    # ------------------------------------------------------------------ sending events

    async def send_raw(self, text: str) -> None:
        """Send an arbitrary text frame (e.g. invalid JSON, which makes NoneBot disconnect)."""
        await self._require_ws().send(text)

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Push an event as-is (use for notices, requests or hand-crafted malformed events)."""
        payload = dict(event)
        self.sent_events.append(payload)
        await self._require_ws().send(json.dumps(payload, ensure_ascii=False))

    async def send_heartbeat(self, interval_ms: int = 5000) -> None:
        await self.send_event(
            self._meta_event("heartbeat", status={"online": True, "good": True}, interval=interval_ms)
        )

    def _meta_event(self, meta_event_type: str, **fields: Any) -> dict[str, Any]:
        return {
            "time": int(time.time()),
            "self_id": self.self_id,
            "post_type": "meta_event",
            "meta_event_type": meta_event_type,
            **fields,
        }

    async def _heartbeat_loop(self, interval: float) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                await self.send_heartbeat(int(interval * 1000))

    def _compose(
        self,
        text: str,
        *,
        at_bot: bool,
        reply_to: int | None,
        segments: Sequence[Segment] | None,
    ) -> list[Segment]:
        """Lay segments out the way QQ clients do: quote first, then the @, then the body.

        A QQ client separates an @ from the following text with a space, which NoneBot strips
        when it removes the @bot segment and sets ``to_me``.
        """
        body: list[Segment] = [dict(seg) for seg in segments] if segments is not None else []
        if text:
            body.append(text_segment(f" {text}" if at_bot and not text.startswith(" ") else text))
        prefix: list[Segment] = []
        if reply_to is not None:
            prefix.append(reply_segment(reply_to))
        if at_bot:
            prefix.append(at_segment(self.self_id))
        return prefix + body

    async def send_group_message(
        self,
        group_id: int,
        user_id: int,
        text: str = "",
        *,
        at_bot: bool = False,
        nickname: str | None = None,
        card: str | None = None,
        role: str | None = None,
        reply_to: int | None = None,
        segments: Sequence[Segment] | None = None,
        sub_type: str = "normal",
        message_id: int | None = None,
    ) -> int:
        """Push a group message event from ``user_id``; returns its ``message_id``.

        ``segments`` are sent before ``text`` (either may be empty); ``at_bot`` and ``reply_to``
        prepend an ``at``/``reply`` segment.  ``nickname``/``card``/``role`` default to what this
        user had in earlier messages (else ``user<id>``, no card, ``member``), because a QQ
        identity persists between messages.  The sender is remembered for
        ``get_group_member_info`` and the message for ``get_msg``.
        """
        segs = self._compose(text, at_bot=at_bot, reply_to=reply_to, segments=segments)
        message_id = self.next_message_id() if message_id is None else message_id
        known = self._members.get((group_id, user_id)) or _Member(f"user{user_id}")
        member = _Member(
            nickname if nickname is not None else known.nickname,
            card if card is not None else known.card,
            role if role is not None else known.role,
            known.extra,
        )
        self._members[(group_id, user_id)] = member
        sender = {
            "user_id": user_id,
            "nickname": member.nickname,
            "card": member.card,
            "sex": "unknown",
            "age": 0,
            "area": "",
            "level": "1",
            "role": member.role,
            "title": "",
        }
        event = self._message_event("group", sub_type, message_id, user_id, segs, sender)
        event["group_id"] = group_id
        event["anonymous"] = None
        self._remember_incoming(event)
        await self.send_event(event)
        return message_id

    async def send_private_message(
        self,
        user_id: int,
        text: str = "",
        *,
        nickname: str | None = None,
        reply_to: int | None = None,
        segments: Sequence[Segment] | None = None,
        sub_type: str = "friend",
        message_id: int | None = None,
    ) -> int:
        """Push a private (friend) message event; returns its ``message_id``.

        NoneBot marks every private message ``to_me``.
        """
        segs = self._compose(text, at_bot=False, reply_to=reply_to, segments=segments)
        message_id = self.next_message_id() if message_id is None else message_id
        sender = {"user_id": user_id, "nickname": nickname or f"user{user_id}", "sex": "unknown", "age": 0}
        event = self._message_event("private", sub_type, message_id, user_id, segs, sender)
        self._remember_incoming(event)
        await self.send_event(event)
        return message_id

    def _message_event(
        self,
        message_type: str,
        sub_type: str,
        message_id: int,
        user_id: int,
        segments: list[Segment],
        sender: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "time": int(time.time()),
            "self_id": self.self_id,
            "post_type": "message",
            "message_type": message_type,
            "sub_type": sub_type,
            "message_id": message_id,
            "user_id": user_id,
            "message": segments,
            "raw_message": to_cq(segments),
            "font": 0,
            "sender": sender,
        }

    def _remember_incoming(self, event: dict[str, Any]) -> None:
        stored: dict[str, Any] = {
            key: event[key]
            for key in ("time", "message_type", "message_id", "sender", "message", "raw_message", "group_id")
            if key in event
        }
        stored["real_id"] = event["message_id"]
        self._messages[int(event["message_id"])] = stored

    # ------------------------------------------------------------------ waiting

    def mark(self) -> int:
        """Index the next call will get; pass as ``after=`` to ignore everything before now."""
        return len(self.calls)

    def pending_calls(self, action: str | Collection[str] | None = None) -> list[ApiCall]:
        """Calls not yet returned by a ``wait_for_*`` helper."""
        actions = _action_set(action)
        return [c for c in self.calls if not c.consumed and (actions is None or c.action in actions)]

    async def wait_for_call(
        self,
        action: str | Collection[str] | None,
        predicate: CallPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        after: int = 0,
    ) -> ApiCall:
        """Return the oldest unconsumed matching call, waiting for it if needed, and consume it.

        Calls are consumed in order, so "send a message, then wait for the reply" works even if
        the reply arrived before the wait started, and two consecutive waits return two distinct
        calls.  ``after`` (from :meth:`mark`) additionally ignores older calls.  Fails with an
        ``AssertionError`` listing every call seen on timeout or when the connection closes.
        """
        waiter = _Waiter(_action_set(action), predicate, after)
        found: ApiCall | None = None

        def ready() -> bool:
            nonlocal found
            found = next((c for c in self.calls if waiter.matches(c)), None)
            return found is not None or self.closed

        async with self._changed:
            if not ready():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(ready), timeout)
        if found is None:
            reason = "connection closed" if self.closed else f"timed out after {timeout}s"
            raise AssertionError(
                f"no {sorted(waiter.actions) if waiter.actions else 'API'} call matched ({reason}); "
                f"calls seen: {self._describe_calls()}"
            )
        found.consumed = True
        return found

    async def expect_no_call(
        self,
        action: str | Collection[str] | None,
        predicate: CallPredicate | None = None,
        within: float = 1.5,
        *,
        after: int = 0,
    ) -> None:
        """Assert that no unconsumed matching call exists or arrives within ``within`` seconds.

        Pre-existing unconsumed calls count, so leftover replies from earlier steps are caught;
        pass ``after=client.mark()`` to only look at new calls.  Nothing is consumed.
        """
        waiter = _Waiter(_action_set(action), predicate, after)

        def seen() -> bool:
            return any(waiter.matches(c) for c in self.calls)

        async with self._changed:
            if not seen():
                try:
                    await asyncio.wait_for(self._changed.wait_for(seen), within)
                except TimeoutError:
                    return
        offending = [c.describe() for c in self.calls if waiter.matches(c)]
        raise AssertionError(f"unexpected API call(s): {offending}")

    @staticmethod
    def _message_predicate(
        group_id: int | None,
        user_id: int | None,
        predicate: CallPredicate | None,
        *,
        delivered: Callable[[ApiCall], bool],
    ) -> CallPredicate:
        if group_id is not None and user_id is not None:
            raise ValueError("pass group_id for group messages or user_id for private ones, not both")

        def match(call: ApiCall) -> bool:
            if not delivered(call):
                return False
            if group_id is not None and (call.message_type != "group" or call.group_id != group_id):
                return False
            if user_id is not None and (call.message_type != "private" or call.user_id != user_id):
                return False
            return predicate is None or predicate(call)

        return match

    async def wait_for_message(
        self,
        *,
        group_id: int | None = None,
        user_id: int | None = None,
        predicate: CallPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        after: int = 0,
    ) -> ApiCall:
        """Wait for the bot to send a message, whichever send action it used.

        ``group_id`` matches group messages to that group, ``user_id`` private messages to that
        user; neither matches any message.  Only sends this client answered with ``ok`` count:
        one refused via :meth:`fail_action` never reached the chat, so a test waiting for the
        bot's fallback message gets the fallback, not the refused attempt (use
        :meth:`wait_for_call` to see attempts).
        """
        match = self._message_predicate(group_id, user_id, predicate, delivered=lambda c: c.ok)
        return await self.wait_for_call(SEND_ACTIONS, match, timeout, after=after)

    async def wait_for_messages(
        self,
        count: int,
        *,
        group_id: int | None = None,
        user_id: int | None = None,
        predicate: CallPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        after: int = 0,
    ) -> list[ApiCall]:
        """Wait for ``count`` messages (e.g. several characters answering), sharing one deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        calls: list[ApiCall] = []
        for _ in range(count):
            calls.append(
                await self.wait_for_message(
                    group_id=group_id,
                    user_id=user_id,
                    predicate=predicate,
                    timeout=max(0.0, deadline - loop.time()),
                    after=after,
                )
            )
        return calls

    async def expect_no_message(
        self,
        *,
        group_id: int | None = None,
        user_id: int | None = None,
        predicate: CallPredicate | None = None,
        within: float = 1.5,
        after: int = 0,
    ) -> None:
        """Assert the bot sends no (matching) message within ``within`` seconds.

        Sends still awaiting their answer count; sends refused via :meth:`fail_action` do not.
        """
        match = self._message_predicate(group_id, user_id, predicate, delivered=lambda c: not c.failed)
        await self.expect_no_call(SEND_ACTIONS, match, within, after=after)

    def _describe_calls(self) -> str:
        if not self.calls:
            return "none"
        return "; ".join(c.describe() for c in self.calls[-30:])


def _failure_response(retcode: int, message: str) -> dict[str, Any]:
    return {"status": "failed", "retcode": retcode, "data": None, "message": message, "wording": message}
