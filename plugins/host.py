"""Starts NoneBot with the adapters ``[platforms]`` enables and attaches the core's runtime.

This is the one place where the process becomes a NoneBot application; ``python -m bot run`` calls
:func:`run`.
"""

from __future__ import annotations

import logging

import nonebot
from nonebot.log import LoguruHandler

from bot.config import BotConfig
from bot.errors import BotError
from bot.runtime import Runtime

log = logging.getLogger(__name__)

OUR_LOGGERS = ("bot", "storage", "plugins", "alembic")


def run(config: BotConfig) -> None:
    """Serve until interrupted: OneBot v11 reverse WebSocket at ``/onebot/v11/ws``, and/or the console."""
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [LoguruHandler()]
        logger.setLevel(config.server.log_level)
        logger.propagate = False
    packs = Runtime.load_packs(config)
    platforms = config.platforms
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
    if platforms.discord.enabled:
        log.warning("[platforms.discord] is not available yet; Discord stays off")

    plugin = nonebot.load_plugin("plugins.roleplay")
    if plugin is None:
        raise BotError("the roleplay plugin failed to load; see the log above")
    attach = plugin.module.attach
    holder: dict[str, Runtime] = {}

    @driver.on_startup
    async def start_runtime() -> None:
        try:
            holder["runtime"] = runtime = await Runtime.create(config, packs=packs)
        except BotError as exc:
            log.error("cannot start: %s", exc)
            raise
        attach(runtime)
        for error in runtime.pack_errors:
            log.error("pack not loaded: %s", error)

    @driver.on_shutdown
    async def stop_runtime() -> None:
        attach(None)
        if (runtime := holder.pop("runtime", None)) is not None:
            await runtime.aclose()

    nonebot.run()
