"""Starts NoneBot with the adapters ``[platforms]`` enables and attaches the core's runtime.

This is the one place where the process becomes a NoneBot application; ``python -m bot run`` calls
:func:`run`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import TYPE_CHECKING

import nonebot
from nonebot.log import LoguruHandler
from starlette.routing import Mount

from bot.config import BotConfig
from bot.errors import BotError, ConfigError, StorageError
from bot.runtime import Runtime

if TYPE_CHECKING:
    from plugins.discord_bridge import DiscordBridge

log = logging.getLogger(__name__)

OUR_LOGGERS = ("bot", "storage", "plugins", "alembic", "discord")
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")
"""uvicorn's loggers that print request paths with their query (the OneBot token may be in it)."""
_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"']*", re.IGNORECASE)


class RedactTokens(logging.Filter):
    """Hides the value of ``access_token=`` in the request lines uvicorn logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(r"\1***", record.msg)
        return True


def run(config: BotConfig) -> None:
    """Serve until interrupted: OneBot v11 reverse WebSocket at ``/onebot/v11/ws``, the console,
    and Discord, as ``[platforms]`` enables them."""
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [LoguruHandler()]
        logger.setLevel(config.server.log_level)
        logger.propagate = False
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).addFilter(RedactTokens())
    platforms = config.platforms
    discord_token = platforms.discord.token()
    if platforms.discord.enabled and not discord_token:
        raise ConfigError(
            f"[platforms.discord] is enabled but the environment variable {platforms.discord.token_env} "
            "is empty: put the bot token there (README, 'Connect Discord')"
        )
    check_onebot_access(config)
    packs = Runtime.load_packs(config)
    nonebot.init(
        _env_file=None,
        driver="~fastapi",
        host=config.server.host,
        port=config.server.port,
        log_level=config.server.log_level,
        onebot_access_token=platforms.onebot.token() or None,
        superusers=set(),
        # NOTE: explicit, so that no environment variable can turn FastAPI's pages on.
        fastapi_openapi_url=None,
        fastapi_docs_url=None,
        fastapi_redoc_url=None,
    )
    driver = nonebot.get_driver()
    if platforms.onebot.enabled:
        from plugins.adapters import TolerantOneBotAdapter

        driver.register_adapter(
            TolerantOneBotAdapter,
            access_token=platforms.onebot.token(),
            secret=platforms.onebot.http_secret(),
            http_post=platforms.onebot.http_post,
        )
    if platforms.console.enabled:
        from nonebot.adapters.console import Adapter as ConsoleAdapter

        driver.register_adapter(ConsoleAdapter)

    console = None
    if config.console.enabled:
        from plugins.web import PREFIX, WebConsole

        console = WebConsole(config)
        nonebot.get_app().mount(PREFIX, console.app)

    plugin = nonebot.load_plugin("plugins.roleplay")
    if plugin is None:
        raise BotError("the roleplay plugin failed to load; see the log above")
    attach = plugin.module.attach
    driver.on_bot_connect(plugin.module.resend_unposted)
    running: dict[str, Runtime] = {}
    bridges: list[DiscordBridge] = []

    @driver.on_startup
    async def start_runtime() -> None:
        log.info("serving %s", ", ".join(served_routes()) or "no HTTP or WebSocket routes")
        try:
            running["runtime"] = runtime = await Runtime.create(config, packs=packs)
        except (BotError, StorageError) as exc:
            log.error("cannot start: %s", exc)
            raise
        attach(runtime)
        if console is not None:
            console.attach(runtime)
        if platforms.console.enabled:
            from plugins.roleplay.console import end_with_the_console

            end_with_the_console()
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
        if console is not None:
            console.attach(None)
        for bridge in bridges:
            await bridge.close()
        if (runtime := running.pop("runtime", None)) is not None:
            await runtime.aclose()

    from plugins.adapters import ws_max_size

    nonebot.run(ws_max_size=ws_max_size(config.characters.max_import_mb))


def is_loopback(host: str) -> bool:
    """Whether ``[server] host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_onebot_access(config: BotConfig) -> None:
    """Refuse to start with a OneBot way in that anyone on the network could use: no access token on
    an address other machines reach, or HTTP POST with neither token nor secret. On loopback an empty
    token stays allowed (the implementation runs beside the bot), with a warning."""
    onebot, host = config.platforms.onebot, config.server.host
    if not onebot.enabled:
        return
    token = onebot.token()
    if onebot.http_post and not token and not onebot.http_secret():
        raise ConfigError(
            "[platforms.onebot] http_post is on but access_token (or access_token_env) and secret "
            "(or secret_env) are both empty: set one, so that only your OneBot implementation can post events"
        )
    if token:
        return
    if not is_loopback(host):
        raise ConfigError(
            f"[platforms.onebot] access_token is empty (or access_token_env names an unset variable) while "
            f"[server] host = {host!r} is reachable from other machines: set access_token_env (or "
            "access_token) to a long random token, or listen on host = \"127.0.0.1\""
        )
    log.warning(
        "[platforms.onebot] access_token is empty: any program on this machine can connect as a OneBot "
        "account; set access_token_env (or access_token) to require a token"
    )


def served_routes() -> list[str]:
    """What the NoneBot app answers, e.g. ``websocket /onebot/v11/ws``, ``POST /onebot/v11/http``,
    ``/console/ (the web console, behind its login)``."""
    routes: list[str] = []
    for route in nonebot.get_app().routes:
        path = getattr(route, "path", repr(route))
        methods = getattr(route, "methods", None)
        if isinstance(route, Mount):
            routes.append(f"{path}/ (the web console, behind its login)")
        elif methods:
            routes.extend(f"{method} {path}" for method in sorted(methods) if method != "HEAD")
        else:
            routes.append(f"websocket {path}")
    return routes
