"""The sections of ``bot.toml`` that set where the bot runs: its server, database, characters folder and
platforms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    ValidationInfo,
    field_validator,
)

from bot.config.section import Section


class ServerConfig(Section):
    """The NoneBot driver: one HTTP + WebSocket server for every adapter."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WebConsoleConfig(Section):
    """``[console]``: the web console at ``/console/`` on the bot's own port (and so, by default, on
    ``127.0.0.1`` only)."""

    enabled: bool = True
    token_env: str = "BOT_CONSOLE_TOKEN"
    """The variable holding the console's login token (a long random string). Unset or empty: the
    bot logs a one-time login link at every start instead, as Jupyter does."""
    session_hours: float = Field(12.0, gt=0)
    """How long a login lasts."""
    login_attempts: int = Field(5, ge=1)
    """Wrong tokens one address may try in ``login_window_s`` before it must wait."""
    login_window_s: float = Field(300.0, gt=0)

    def token(self) -> str | None:
        return os.environ.get(self.token_env, "").strip() or None


class StorageConfig(Section):
    url: str = "sqlite+aiosqlite:///data/bot.sqlite3"
    """SQLite (one bot process per file) or ``postgresql+asyncpg://user:password@host/db``, which
    several bot processes share."""
    url_env: str | None = None
    """The name of an env variable holding the URL (so its password stays out of this file); when
    that variable is set, it wins over ``url``."""
    data_dir: Path = Path("data")
    """Generated files: embedding caches, converted local models."""
    pool_size: int = Field(default=10, ge=1)
    """PostgreSQL: connections each process keeps for reads and writes (as many more at peaks, plus
    one that holds its chats' locks): keep processes × (2 × pool_size + 1) under the server's
    ``max_connections`` (100 by default)."""
    check_every_s: float = Field(default=15.0, gt=0)
    """How often the bot makes sure its database is there and writable (a deleted SQLite file is
    written back; superusers hear of trouble once)."""
    sync_interval_s: float = Field(default=1.0, gt=0)
    """PostgreSQL: how often a process looks for characters another process imported or removed."""


class CharactersConfig(Section):
    dir: Path = Path("characters")
    default: str = "orla"
    max_import_mb: float = Field(default=20.0, gt=0)
    """The largest file ``/character import`` fetches from a chat (and each file of an archive)."""
    progress_every_s: float = Field(default=10.0, gt=0)
    """The least time between two "indexing 120/400 scenes" messages in the chat that imported."""
    download_timeout_s: float = Field(default=60.0, gt=0)
    """The deadline of one whole download of an imported file (a server trickling bytes is cut)."""
    allow_private_urls: bool = False
    """Let imports download from loopback, private and link-local addresses (refused by default: a
    link in a chat must not reach the bot's own machine or network)."""
    allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Private networks downloads may reach even so, e.g. ``["172.17.0.0/16"]`` where the OneBot
    implementation serves files from a Docker network."""


class OneBotConfig(Section):
    enabled: bool = True
    access_token: str = ""
    access_token_env: str | None = None
    """Name of an env variable holding the token, to keep it out of the file."""
    file_dir: Path | None = None
    """The folder the OneBot implementation shares with the bot (the same files on both sides): a
    local path ``get_file`` answers with is read only when it lies inside it. Unset, such paths are
    never read and files come as base64 or through their URL."""

    http_post: bool = False
    """Also take events by OneBot HTTP POST at ``/onebot/v11/http``; each POST must carry the
    access token or a valid ``secret`` signature."""
    secret: str = ""
    """HMAC key of OneBot's ``X-Signature`` on HTTP POST events (another way to authenticate them)."""
    secret_env: str | None = None
    """Name of an env variable holding the secret, to keep it out of the file."""

    def token(self) -> str:
        if self.access_token_env:
            return os.environ.get(self.access_token_env, "")
        return self.access_token

    def http_secret(self) -> str:
        if self.secret_env:
            return os.environ.get(self.secret_env, "")
        return self.secret


class ConsoleConfig(Section):
    enabled: bool = False
    user_name: str = "You"


class DiscordConfig(Section):
    enabled: bool = False
    token_env: str = "DISCORD_TOKEN"
    """Name of the env variable holding the bot token (never the token itself)."""
    webhooks: bool = True
    """Post character replies through a channel webhook, under the character's name and avatar,
    where the bot has Manage Webhooks; elsewhere replies are normal messages with the name in bold."""
    command_guilds: list[int] = Field(default_factory=list)
    """Register the slash commands in these servers only, where they appear at once; empty
    registers them for every server."""
    shard_count: int | None = Field(default=None, ge=1)
    """Shards across all processes (discord.py's sharded client); unset: one process, Discord's
    recommended count."""
    shard_ids: list[int] | None = None
    """The shards this process runs (each in ``0 … shard_count-1``); needs ``shard_count``."""

    @field_validator("shard_ids")
    @classmethod
    def _shards(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if value is None:
            return value
        count = info.data.get("shard_count")
        if count is None:
            raise ValueError("needs shard_count (the number of shards of all processes)")
        wrong = [shard for shard in value if not 0 <= shard < count]
        if wrong or not value:
            raise ValueError(f"must name shards 0 to {count - 1}" + (f"; {wrong} are not" if wrong else ""))
        return value

    def token(self) -> str:
        return os.environ.get(self.token_env, "").strip()


class PlatformsConfig(Section):
    onebot: OneBotConfig = OneBotConfig()
    console: ConsoleConfig = ConsoleConfig()
    discord: DiscordConfig = DiscordConfig()
