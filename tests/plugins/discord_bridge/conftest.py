"""A connected :class:`DiscordWorld` around a bridge that serves the real router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import DiscordConfig
from bot.outbox import Outbox
from bot.router import Router
from plugins.discord_bridge import DiscordBridge
from tests.support.discord_gateway import DiscordWorld


async def _world(router: Router, outbox: Outbox, *, manage_webhooks: bool) -> AsyncIterator[DiscordWorld]:
    bridge = DiscordBridge(router, DiscordConfig(enabled=True), outbox=outbox, retry_delays=(0.01, 0.01))
    world = DiscordWorld(bridge, manage_webhooks=manage_webhooks)
    await world.connect()
    yield world
    await world.close()


@pytest.fixture
async def world(router: Router, outbox: Outbox) -> AsyncIterator[DiscordWorld]:
    """A server where the bot may manage webhooks: characters speak as themselves."""
    async for world in _world(router, outbox, manage_webhooks=True):
        yield world


@pytest.fixture
async def plain_world(router: Router, outbox: Outbox) -> AsyncIterator[DiscordWorld]:
    """A server where the bot may not manage webhooks: replies come from the bot, name in bold."""
    async for world in _world(router, outbox, manage_webhooks=False):
        yield world
