"""Discord's REST API, as far as the bridge uses it, answered in-process.

:class:`FakeDiscordAPI` takes the place of the aiohttp session under discord.py's ``HTTPClient``
(and under the webhook and interaction adapters, which share that session), so discord.py's own
request code runs unchanged: routes, headers, multipart uploads, 429 handling. Each request is
recorded as a :class:`Call`; answers are built like Discord's, so discord.py turns them into real
``Message``/``Webhook`` objects. Faults can be queued to test retries and fallbacks.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from types import TracebackType
from typing import Any

import aiohttp
from multidict import CIMultiDict

API_PREFIX = re.compile(r"^https://discord\.com/api/v\d+")
TIMESTAMP = "2026-11-23T12:00:00.000000+00:00"

Json = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One request the bot made."""

    method: str
    path: str
    params: dict[str, str]
    json: Any
    files: list[str]
    uploads: dict[str, bytes] = field(default_factory=dict)
    """The bytes of each uploaded file, by file name (a multipart request's file parts)."""
    status: int = 0
    response: Any = None
    """What the fake answered (for a posted message: the message object, as Discord returns it)."""

    @property
    def content(self) -> str:
        return str(self.json.get("content", "")) if isinstance(self.json, dict) else ""


@dataclass(slots=True)
class Fault:
    """A queued failure for requests matching ``method`` and ``path``."""

    method: str
    path: re.Pattern[str]
    times: int
    status: int = 500
    body: Json = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None


class FakeResponse:
    """Enough of ``aiohttp.ClientResponse`` for discord.py."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.reason = {200: "OK", 204: "No Content", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, ""
        )
        self.headers: CIMultiDict[str] = CIMultiDict(headers or {})
        self._text = "" if body is None else json.dumps(body)
        if body is not None:
            self.headers["content-type"] = "application/json"

    async def text(self, encoding: str | None = None) -> str:
        return self._text

    async def read(self) -> bytes:
        return self._text.encode()


class _CdnResponse(FakeResponse):
    """A file from Discord's CDN: raw bytes, not JSON."""

    def __init__(self, data: bytes | None) -> None:
        super().__init__(200 if data is not None else 404)
        self._data = data or b""

    async def read(self) -> bytes:
        return self._data


class _CdnExchange:
    def __init__(self, data: bytes | None) -> None:
        self.data = data

    async def __aenter__(self) -> FakeResponse:
        await asyncio.sleep(0)
        return _CdnResponse(self.data)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


class _Exchange:
    def __init__(self, api: FakeDiscordAPI, method: str, url: str, kwargs: dict[str, Any]) -> None:
        self.api, self.method, self.url, self.kwargs = api, method, url, kwargs

    async def __aenter__(self) -> FakeResponse:
        return await self.api.answer(self.method, self.url, self.kwargs)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


def _read_part(value: Any) -> bytes:
    """A file part's bytes, leaving the file where it was (discord.py rewinds it for a retry)."""
    if isinstance(value, bytes):
        return value
    start = value.tell()
    data = bytes(value.read())
    value.seek(start)
    return data


def _decode(data: Any) -> tuple[Any, dict[str, bytes]]:
    """The JSON payload and uploaded files (name → bytes) of a request body (JSON text or multipart)."""
    if data is None:
        return None, {}
    if isinstance(data, str | bytes):
        return json.loads(data), {}
    assert isinstance(data, aiohttp.FormData)
    payload: Any = None
    files: dict[str, bytes] = {}
    for options, _headers, value in data._fields:
        if options.get("name") == "payload_json":
            payload = json.loads(value)
        elif "filename" in options:
            files[options["filename"]] = _read_part(value)
    return payload, files


Handler = Callable[[Call, re.Match[str]], FakeResponse]


class FakeDiscordAPI:
    """An in-process Discord REST API for one bot user and application."""

    closed = False

    def __init__(self, bot_user: Json, application_id: int, *, guild_id: int | None = None) -> None:
        self.bot_user = bot_user
        self.application_id = application_id
        self.guild_id = guild_id
        self.calls: list[Call] = []
        self.webhooks: dict[int, list[Json]] = {}
        self.emojis: list[Json] = []
        self.cdn: dict[str, bytes] = {}
        """Files users posted, by CDN URL (see :meth:`upload`); fetched with ``GET`` on the session."""
        self.cdn_fetches: list[str] = []
        self.channels: dict[int, Json] = {}
        """Channels ``GET /channels/{id}`` finds (the client fetches the ones not in its cache)."""
        self.users: dict[int, Json] = {}
        """Users ``GET /users/{id}`` finds and ``POST /users/@me/channels`` opens a DM with."""
        self.dm_channel_id = 0
        """The id ``POST /users/@me/channels`` gives the DM it opens."""
        self.messages: dict[int, Json] = {}
        """Messages ``GET /channels/{id}/messages/{id}`` finds: what users and the bot posted."""
        self.faults: list[Fault] = []
        self._ids = count(9_000_000_000_000_000)
        self._changed = asyncio.Condition()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"^/channels/(\d+)/messages$"), self._create_message),
            ("GET", re.compile(r"^/channels/(\d+)/messages/(\d+)$"), self._get_message),
            ("GET", re.compile(r"^/channels/(\d+)$"), self._get_channel),
            ("GET", re.compile(r"^/users/(\d+)$"), self._get_user),
            ("POST", re.compile(r"^/users/@me/channels$"), self._create_dm),
            ("POST", re.compile(r"^/channels/(\d+)/typing$"), lambda call, m: FakeResponse(204)),
            ("GET", re.compile(r"^/channels/(\d+)/webhooks$"), self._list_webhooks),
            ("POST", re.compile(r"^/channels/(\d+)/webhooks$"), self._create_webhook),
            ("POST", re.compile(r"^/webhooks/(\d+)/([^/]+)$"), self._execute_webhook),
            ("POST", re.compile(r"^/interactions/(\d+)/([^/]+)/callback$"), self._interaction_callback),
            ("PUT", re.compile(r"^/applications/(\d+)(?:/guilds/\d+)?/commands$"), self._put_commands),
            ("GET", re.compile(r"^/applications/(\d+)/emojis$"), self._list_emojis),
            ("POST", re.compile(r"^/applications/(\d+)/emojis$"), self._create_emoji),
        ]

    # -- the aiohttp session surface -------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> _Exchange:
        return _Exchange(self, method, url, kwargs)

    def get(self, url: str, **kwargs: Any) -> _CdnExchange:
        """discord.py downloads attachments with ``session.get(url)`` (``HTTPClient.get_from_cdn``)."""
        self.cdn_fetches.append(url)
        return _CdnExchange(self.cdn.get(url))

    async def close(self) -> None:
        self.closed = True

    def upload(self, channel_id: int, name: str, data: bytes) -> Json:
        """An attachment a user posted: its payload, with the bytes served at its CDN URL."""
        attachment_id = self._id()
        url = f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{name}"
        self.cdn[url] = data
        return {"id": attachment_id, "filename": name, "size": len(data), "url": url, "proxy_url": url}

    # -- what tests use --------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        *,
        times: int = 1,
        status: int = 500,
        body: Json | None = None,
        headers: dict[str, str] | None = None,
        error: Exception | None = None,
    ) -> None:
        """Make the next ``times`` requests to ``path`` (a regex) fail with ``status`` or ``error``."""
        self.faults.append(Fault(method, re.compile(path), times, status, body or {}, headers or {}, error))

    def made(self, method: str, path: str) -> list[Call]:
        """The recorded calls to ``path`` (a regex, matched against the whole path)."""
        pattern = re.compile(path)
        return [call for call in self.calls if call.method == method and pattern.fullmatch(call.path)]

    def posts(self) -> list[Call]:
        """Every message the bot posted: as itself, through a webhook, or as an interaction follow-up.

        Attempts that failed are left out; they stay in :attr:`calls`.
        """
        return [
            call
            for call in self.calls
            if call.method == "POST"
            and call.status in (200, 201)
            and re.fullmatch(r"/channels/\d+/messages|/webhooks/\d+/[^/]+", call.path)
        ]

    def add_webhook(self, channel_id: int, *, owner: Json | None = None) -> Json:
        """A webhook that already exists in the channel (made by ``owner``, the bot by default)."""
        hook = self._webhook(channel_id, owner or self.bot_user, name="Roleplay characters")
        self.webhooks.setdefault(channel_id, []).append(hook)
        return hook

    def delete_webhooks(self, channel_id: int) -> None:
        self.webhooks.pop(channel_id, None)

    async def wait_for(self, method: str, path: str, *, count: int = 1, seconds: float = 5.0) -> list[Call]:
        """Wait until ``count`` calls to ``path`` were made (for work discord.py runs as tasks)."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.made(method, path)) >= count)
        return self.made(method, path)

    async def settle(self, quiet: float = 0.05) -> None:
        """Wait until no request has come for ``quiet`` seconds."""
        while True:
            try:
                async with asyncio.timeout(quiet), self._changed:
                    await self._changed.wait()
            except TimeoutError:
                return

    @staticmethod
    def webhook_author(webhook_id: int | str, name: str) -> Json:
        """The author of a webhook message: the webhook, under the name the message was posted with."""
        return {"id": str(webhook_id), "username": name, "avatar": None, "discriminator": "0000", "bot": True}

    # -- answering ---------------------------------------------------------------------------------

    async def answer(self, method: str, url: str, kwargs: dict[str, Any]) -> FakeResponse:
        await asyncio.sleep(0)
        path = API_PREFIX.sub("", url)
        payload, uploads = _decode(kwargs.get("data"))
        params = {key: str(value) for key, value in (kwargs.get("params") or {}).items()}
        call = Call(method, path, params, payload, list(uploads), uploads)
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path.fullmatch(path):
                fault.times -= 1
                if fault.error is not None:
                    raise fault.error
                call.status = fault.status
                return FakeResponse(fault.status, fault.body, fault.headers)
        for route_method, pattern, handler in self._routes:
            if route_method == method and (match := pattern.fullmatch(path)):
                response = handler(call, match)
                call.status = response.status
                call.response = json.loads(response._text) if response._text else None
                return response
        return FakeResponse(404, {"message": f"no fake for {method} {path}", "code": 0})

    def _id(self) -> str:
        return str(next(self._ids))

    def message(self, channel_id: int | str, content: str, author: Json, **extra: Any) -> Json:
        """A message object the way Discord returns it."""
        data: Json = {
            "id": self._id(),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        data.update(extra)
        return data

    def _attachments(self, call: Call) -> list[Json]:
        return [
            {
                "id": self._id(),
                "filename": name,
                "size": len(data),
                "url": f"https://cdn.discordapp.com/attachments/1/2/{name}",
                "proxy_url": f"https://media.discordapp.net/attachments/1/2/{name}",
            }
            for name, data in call.uploads.items()
        ]

    def _create_message(self, call: Call, match: re.Match[str]) -> FakeResponse:
        payload = call.json or {}
        extra: Json = {"attachments": self._attachments(call)}
        if reference := payload.get("message_reference"):
            extra |= {"type": 19, "message_reference": reference}
        message = self.message(match[1], payload.get("content", ""), self.bot_user, **extra)
        self.messages[int(message["id"])] = message
        return FakeResponse(200, message)

    def _get_message(self, call: Call, match: re.Match[str]) -> FakeResponse:
        message = self.messages.get(int(match[2]))
        if message is None or message["channel_id"] != match[1]:
            return FakeResponse(404, {"message": "Unknown Message", "code": 10008})
        return FakeResponse(200, message)

    def _get_channel(self, call: Call, match: re.Match[str]) -> FakeResponse:
        channel = self.channels.get(int(match[1]))
        if channel is None:
            return FakeResponse(404, {"message": "Unknown Channel", "code": 10003})
        return FakeResponse(200, channel)

    def _get_user(self, call: Call, match: re.Match[str]) -> FakeResponse:
        found = self.users.get(int(match[1]))
        if found is None:
            return FakeResponse(404, {"message": "Unknown User", "code": 10013})
        return FakeResponse(200, found)

    def _create_dm(self, call: Call, match: re.Match[str]) -> FakeResponse:
        recipient = self.users.get(int((call.json or {}).get("recipient_id", 0)))
        if recipient is None:
            return FakeResponse(400, {"message": "Invalid Recipient(s)", "code": 50033})
        channel = {
            "id": str(self.dm_channel_id),
            "type": 1,
            "last_message_id": None,
            "recipients": [recipient],
        }
        return FakeResponse(200, channel)

    def _webhook(self, channel_id: int | str, owner: Json, *, name: str) -> Json:
        return {
            "id": self._id(),
            "type": 1,
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "name": name,
            "avatar": None,
            "token": f"token-{next(self._ids)}",
            "application_id": str(self.application_id),
            "user": owner,
        }

    def _list_webhooks(self, call: Call, match: re.Match[str]) -> FakeResponse:
        return FakeResponse(200, self.webhooks.get(int(match[1]), []))

    def _create_webhook(self, call: Call, match: re.Match[str]) -> FakeResponse:
        hook = self._webhook(match[1], self.bot_user, name=(call.json or {}).get("name", "hook"))
        self.webhooks.setdefault(int(match[1]), []).append(hook)
        return FakeResponse(200, hook)

    def _execute_webhook(self, call: Call, match: re.Match[str]) -> FakeResponse:
        payload = call.json or {}
        webhook_id, token = int(match[1]), match[2]
        if webhook_id == self.application_id:  # an interaction follow-up
            message = self.message(0, payload.get("content", ""), self.bot_user, webhook_id=str(webhook_id))
            message["attachments"] = self._attachments(call)
            return FakeResponse(200, message)
        hook = next(
            (hook for hooks in self.webhooks.values() for hook in hooks if int(hook["id"]) == webhook_id),
            None,
        )
        if hook is None or hook["token"] != token:
            return FakeResponse(404, {"message": "Unknown Webhook", "code": 10015})
        author = self.webhook_author(webhook_id, payload.get("username") or hook["name"])
        channel_id = call.params.get("thread_id") or hook["channel_id"]
        message = self.message(channel_id, payload.get("content", ""), author, webhook_id=str(webhook_id))
        message["attachments"] = self._attachments(call)
        return FakeResponse(200, message)

    def _interaction_callback(self, call: Call, match: re.Match[str]) -> FakeResponse:
        kind = (call.json or {}).get("type", 0)
        body = {
            "interaction": {
                "id": match[1],
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": False,
            },
            "resource": {"type": kind},
        }
        return FakeResponse(200, body)

    def _put_commands(self, call: Call, match: re.Match[str]) -> FakeResponse:
        commands = [
            {**command, "id": self._id(), "application_id": match[1], "version": "1"}
            for command in call.json or []
        ]
        return FakeResponse(200, commands)

    def _list_emojis(self, call: Call, match: re.Match[str]) -> FakeResponse:
        return FakeResponse(200, {"items": self.emojis})

    def _create_emoji(self, call: Call, match: re.Match[str]) -> FakeResponse:
        payload = call.json or {}
        emoji: Json = {
            "id": self._id(),
            "name": payload.get("name"),
            "roles": [],
            "require_colons": True,
            "managed": False,
            "animated": False,
            "available": True,
            "user": self.bot_user,
        }
        self.emojis.append(emoji)
        return FakeResponse(201, emoji)
