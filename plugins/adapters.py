"""Adapters registered with NoneBot, where the stock ones need a fix for a group bot.

Kept outside the ``roleplay`` plugin package: NoneBot refuses to load a plugin whose package was
imported before it was loaded, and the host registers adapters first.

NoneBot's OneBot v11 adapter serves six routes and checks the access token only on its WebSockets:
its HTTP routes take any event that names an ``X-Self-ID`` and keep a bot for that id, which then
locks the real account's WebSocket out. :class:`TolerantOneBotAdapter` serves one way in, always
authenticated, and reads frames without ever closing the connection over one it cannot read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
from typing import Any

from nonebot.adapters.onebot.v11 import Adapter as OneBotAdapter
from nonebot.adapters.onebot.v11 import Bot, Event, MessageEvent
from nonebot.adapters.onebot.v11.utils import log as onebot_log
from nonebot.drivers import (
    URL,
    ASGIMixin,
    Driver,
    HTTPServerSetup,
    Request,
    Response,
    WebSocket,
    WebSocketServerSetup,
)
from nonebot.exception import WebSocketClosed
from nonebot.utils import escape_tag
from typing_extensions import override

from plugins.onebot_payloads import UNREADABLE, clean_event, drop_broken_segments, parse_frame

log = logging.getLogger(__name__)

WS_PATH = "/onebot/v11/ws"
"""The reverse WebSocket, the one route served unless HTTP POST is turned on."""
HTTP_PATH = "/onebot/v11/http"
"""Where OneBot HTTP POST events arrive when ``[platforms.onebot] http_post`` is on."""

MIN_WS_FRAME = 16 * 1024 * 1024
"""uvicorn's default frame limit, kept as the floor."""
_FRAME_HEADROOM = 1024 * 1024


def ws_max_size(max_import_mb: float) -> int:
    """The largest WebSocket frame to accept: a ``get_file`` answer carrying the largest file
    ``/character import`` takes, in base64, with room for the JSON around it; never below 16 MiB."""
    base64_bytes = 4 * math.ceil(max_import_mb * 1_000_000 / 3)
    return max(MIN_WS_FRAME, base64_bytes + _FRAME_HEADROOM)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def presented_token(request: Request) -> str | None:
    """The access token a request carries: ``Authorization: Bearer …`` (or ``Token …``), else the
    ``access_token`` query parameter, as OneBot v11 allows both."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    query = request.url.query.get("access_token")
    return query or None


def signed(request: Request, secret: str) -> bool:
    """Whether the body carries OneBot's HMAC-SHA1 signature by ``secret`` (``X-Signature: sha1=…``)."""
    given = request.headers.get("x-signature") or ""
    body = request.content or b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        return False
    expected = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return _same(given.strip().lower(), expected)


class TolerantOneBotAdapter(OneBotAdapter):
    """NoneBot's OneBot v11 adapter with one authenticated way in and a reader that survives any
    frame.

    - Routes: the reverse WebSocket at :data:`WS_PATH`; HTTP POST at :data:`HTTP_PATH` only when
      ``http_post`` is on. NoneBot's other routes (``/onebot/v11/``, ``/onebot/v11/ws/``,
      ``/onebot/v11/http/``) and its forward WebSocket are not served.
    - Credentials (constructor arguments, never NoneBot's environment): a WebSocket needs
      ``access_token`` when one is set; an HTTP POST needs the token or a valid ``secret``
      signature, always. Tokens are compared in constant time.
    - HTTP POST never creates a bot: its events go to the account's connected WebSocket (which
      carries the replies), and a POST for an account with no WebSocket is refused. So no request
      can register an id, and nothing can lock a real account out.
    - Frames that are not JSON, nest too deep or do not make an event are dropped with a warning;
      broken message segments are dropped, not the message.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        access_token: str = "",
        secret: str = "",
        http_post: bool = False,
        **kwargs: Any,
    ) -> None:
        self._access_token = access_token
        self._secret = secret
        self._http_post = http_post
        super().__init__(driver, **kwargs)  # calls _setup, which reads the settings above

    @override
    def _setup(self) -> None:
        if isinstance(self.driver, ASGIMixin):
            name = self.get_name()
            self.setup_websocket_server(WebSocketServerSetup(URL(WS_PATH), f"{name} WS", self._handle_ws))
            if self._http_post:
                post = HTTPServerSetup(URL(HTTP_PATH), "POST", f"{name} HTTP", self._handle_http)
                self.setup_http_server(post)
        self.driver.on_shutdown(self._stop)

    # ------------------------------------------------------------------ credentials

    def _token_refusal(self, request: Request) -> str | None:
        """Why the request's token is not accepted; ``None`` when no token is set or it matches."""
        if not self._access_token:
            return None
        token = presented_token(request)
        if token is None:
            return "Missing access token"
        return None if _same(token, self._access_token) else "Invalid access token"

    def _http_refusal(self, request: Request) -> Response | None:
        """401 without credentials, 403 with wrong ones; ``None`` for the right token or signature."""
        token = presented_token(request)
        if self._access_token and token is not None and _same(token, self._access_token):
            return None
        if self._secret and signed(request, self._secret):
            return None
        if token is None and not request.headers.get("x-signature"):
            return Response(401, content="Missing access token or signature")
        return Response(403, content="Invalid access token or signature")

    # ------------------------------------------------------------------ ways in

    @override
    async def _handle_ws(self, websocket: WebSocket) -> None:
        request = websocket.request
        if (refusal := self._token_refusal(request)) is not None:
            log.warning("refused a OneBot WebSocket from %s: %s", request.url.host, refusal)
            await websocket.close(1008, refusal)
            return
        self_id = request.headers.get("x-self-id")
        if not self_id:
            onebot_log("WARNING", "Missing X-Self-ID Header")
            await websocket.close(1008, "Missing X-Self-ID Header")
            return
        if self_id in self.bots:
            onebot_log("WARNING", f"There's already a bot {escape_tag(self_id)}, ignored")
            await websocket.close(1008, "Duplicate X-Self-ID")
            return

        await websocket.accept()
        bot = Bot(self, self_id)
        self.bot_connect(bot)
        self.connections[self_id] = websocket
        onebot_log("INFO", f"<y>Bot {escape_tag(self_id)}</y> connected")
        try:
            while True:
                if (event := self.frame_to_event(await websocket.receive())) is not None:
                    self._dispatch(bot, event)
        except WebSocketClosed:
            onebot_log("WARNING", f"WebSocket for Bot {escape_tag(self_id)} closed by peer")
        except Exception as exc:
            onebot_log("ERROR", f"WebSocket for Bot {escape_tag(self_id)} failed", exc)
        finally:
            with contextlib.suppress(Exception):  # the peer may have closed it already
                await websocket.close()
            self.connections.pop(self_id, None)
            self.bot_disconnect(bot)

    @override
    async def _handle_http(self, request: Request) -> Response:
        if (refusal := self._http_refusal(request)) is not None:
            log.warning("refused a OneBot HTTP POST: %s", refusal.content)
            return refusal
        self_id = request.headers.get("x-self-id") or ""
        bot = self.bots.get(self_id)
        if not isinstance(bot, Bot):
            log.warning("refused a OneBot HTTP POST for %r: that account has no WebSocket connected", self_id)
            return Response(409, content="No reverse WebSocket of this account is connected")
        body = request.content or b""
        payload = parse_frame(body) if isinstance(body, str | bytes) else UNREADABLE
        if not isinstance(payload, dict) or "post_type" not in payload:
            # NOTE: never handed to json_to_event, which takes a payload without post_type for the
            # answer to a pending API call.
            return Response(400, content="Not a OneBot event")
        if (event := self.json_to_event(payload)) is not None:
            self._dispatch(bot, event)
        return Response(204)

    def _dispatch(self, bot: Bot, event: Event) -> None:
        task = asyncio.create_task(bot.handle_event(event))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # ------------------------------------------------------------------ frames

    def frame_to_event(self, data: object) -> Event | None:
        """The event in a WebSocket frame; ``None`` for anything else: an API answer (handed to the
        call waiting for it), or, after a warning, a frame that is not JSON, nests too deep or fits
        no event."""
        if not isinstance(data, str | bytes):
            return None
        payload = parse_frame(data)
        return None if payload is UNREADABLE else self.json_to_event(payload)

    @classmethod
    @override
    def json_to_event(cls, json_data: Any) -> Event | None:
        """NoneBot's parsing, on a payload whose broken segments are gone, never raising."""
        try:
            event = super().json_to_event(clean_event(json_data))
            if type(event) is Event:
                log.warning("dropped a OneBot %r payload that fits no event type", event.post_type)
                return None
            if isinstance(event, MessageEvent):
                drop_broken_segments(event.message)
                drop_broken_segments(event.original_message)
        except Exception as exc:  # RecursionError included
            log.warning("dropped a OneBot payload no event could be made of (%s)", type(exc).__name__)
            return None
        return event
