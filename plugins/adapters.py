"""Adapters registered with NoneBot, where the stock ones need a fix for a group bot.

Kept outside the ``roleplay`` plugin package: NoneBot refuses to load a plugin whose package was
imported before it was loaded, and the host registers adapters first.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nonebot.adapters.onebot.v11 import Adapter as OneBotAdapter
from nonebot.drivers import WebSocket

log = logging.getLogger(__name__)


class _SkipMalformedFrames:
    """A WebSocket whose ``receive`` drops frames that are not JSON, instead of raising.

    NoneBot's OneBot adapter ends the whole connection on the first frame it cannot parse, which
    would cut every group of that account off until the implementation reconnects.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._websocket, name)

    async def receive(self) -> str | bytes:
        while True:
            data = await self._websocket.receive()
            try:
                json.loads(data)
            except ValueError:
                log.warning("dropped a OneBot frame that is not JSON: %.80r", data)
                continue
            return data


class TolerantOneBotAdapter(OneBotAdapter):
    """NoneBot's OneBot v11 adapter, tolerant of malformed frames on the reverse WebSocket."""

    async def _handle_ws(self, websocket: WebSocket) -> None:
        await super()._handle_ws(_SkipMalformedFrames(websocket))  # type: ignore[arg-type]
