"""Starts NoneBot with the adapters ``[platforms]`` enables and attaches the core's runtime.

This is the one place where the process becomes a NoneBot application; ``python -m bot run`` calls
:func:`run`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import nonebot
from nonebot.log import LoguruHandler

from bot.config import BotConfig
from bot.errors import BotError, ConfigError
from bot.runtime import Runtime

if TYPE_CHECKING:
    from plugins.discord_bridge import DiscordBridge

log = logging.getLogger(__name__)

OUR_LOGGERS = ("bot", "storage", "plugins", "alembic", "discord")


def run(config: BotConfig) -> None:
    """Serve until interrupted: OneBot v11 reverse WebSocket at ``/onebot/v11/ws``, the console,
    and Discord, as ``[platforms]`` enables them."""
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [LoguruHandler()]
        logger.setLevel(config.server.log_level)
        logger.propagate = False
    platforms = config.platforms
    discord_token = platforms.discord.token()
    if platforms.discord.enabled and not discord_token:
        raise ConfigError(
            f"[platforms.discord] is enabled but the environment variable {platforms.discord.token_env} "
            "is empty: put the bot token there (README, 'Connect Discord')"
        )
    packs = Runtime.load_packs(config)
    nonebot.init(
        _env_file=None,
        driver="~fastapi",
        host=config.server.host,
        port=config.server.port,
        log_level=config.server.log_level,
        onebot_access_token=platforms.onebot.token() or None,
        superusers=set(),
    )
    driver = nonebot.get_driver()
    if platforms.onebot.enabled:
        from plugins.adapters import TolerantOneBotAdapter

        driver.register_adapter(TolerantOneBotAdapter)
    if platforms.console.enabled:
        from nonebot.adapters.console import Adapter as ConsoleAdapter

        driver.register_adapter(ConsoleAdapter)

    plugin = nonebot.load_plugin("plugins.roleplay")
    if plugin is None:
        raise BotError("the roleplay plugin failed to load; see the log above")
    attach = plugin.module.attach
    running: dict[str, Runtime] = {}
    bridges: list[DiscordBridge] = []

    @driver.on_startup
    async def start_runtime() -> None:
        try:
            running["runtime"] = runtime = await Runtime.create(config, packs=packs)
        except BotError as exc:
            log.error("cannot start: %s", exc)
            raise
        attach(runtime)
        for error in runtime.pack_errors:
            log.error("pack not loaded: %s", error)
        if platforms.discord.enabled:
            from plugins.discord_bridge import DiscordBridge

            bridge = DiscordBridge(runtime.router, platforms.discord, outbox=runtime.outbox)
            bridge.start(discord_token)
            bridges.append(bridge)

    @driver.on_shutdown
    async def stop_runtime() -> None:
        attach(None)
        for bridge in bridges:
            await bridge.close()
        if (runtime := running.pop("runtime", None)) is not None:
            await runtime.aclose()

    nonebot.run()
