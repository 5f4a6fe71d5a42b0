"""``bot.toml``, declared once as pydantic models.

:func:`load_config` reads and validates the file; any problem stops the start with one
:class:`~bot.errors.ConfigError` whose message names the key and what is wrong with it, e.g.
``bot.toml: [llm] timeout_s: Input should be a valid number (got 'soon')``.

Relative paths in the file (the characters folder, the data folder, a SQLite database) are taken
relative to the folder holding ``bot.toml``, so the bot behaves the same whatever the working
directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from bot.config.chats import (
    MAX_DEBOUNCE_S,
    AdminsConfig,
    BudgetsConfig,
    GroupsConfig,
    Price,
    SchedulerConfig,
    SendingConfig,
    zone,
)
from bot.config.engine import (
    EmbeddingConfig,
    ImagesConfig,
    LLMConfig,
    MemoryConfig,
    PromptConfig,
    ReplyConfig,
    RetrievalConfig,
)
from bot.config.section import Section
from bot.config.service import (
    CharactersConfig,
    ConsoleConfig,
    DiscordConfig,
    OneBotConfig,
    PlatformsConfig,
    ServerConfig,
    StorageConfig,
    WebConsoleConfig,
)
from bot.config.voice import OpenAISpeechConfig, VoiceConfig
from bot.errors import ConfigError

DEFAULT_CONFIG_NAME = "bot.toml"
CONFIG_ENV = "BOT_CONFIG"


class BotConfig(Section):
    """The whole of ``bot.toml``."""

    server: ServerConfig = ServerConfig()
    llm: LLMConfig = LLMConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    prompt: PromptConfig = PromptConfig()
    reply: ReplyConfig = ReplyConfig()
    images: ImagesConfig = ImagesConfig()
    voice: VoiceConfig = VoiceConfig()
    memory: MemoryConfig = MemoryConfig()
    groups: GroupsConfig = GroupsConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    sending: SendingConfig = SendingConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    storage: StorageConfig = StorageConfig()
    characters: CharactersConfig = CharactersConfig()
    admins: AdminsConfig = AdminsConfig()
    platforms: PlatformsConfig = PlatformsConfig()
    console: WebConsoleConfig = WebConsoleConfig()

    base_dir: Path = Field(default=Path("."), exclude=True)
    """The folder of ``bot.toml``; set by :func:`load_config`, not read from the file."""

    def path(self, value: Path) -> Path:
        """Resolve a path from the file against the folder of ``bot.toml``."""
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    @property
    def characters_dir(self) -> Path:
        return self.path(self.characters.dir)

    @property
    def data_dir(self) -> Path:
        return self.path(self.storage.data_dir)

    @property
    def image_cache_dir(self) -> Path:
        """Downscaled screenshots, made once per file."""
        return self.data_dir / "images"

    @property
    def voice_cache_dir(self) -> Path:
        """Synthesised voices, kept by (engine, voice, text) up to ``[voice] cache_mb``."""
        return self.data_dir / "voice"

    @property
    def database_url(self) -> str:
        """``[storage] url`` (or the variable ``url_env`` names) with a relative SQLite path made absolute."""
        url = (
            os.environ.get(self.storage.url_env, "").strip() if self.storage.url_env else ""
        ) or self.storage.url
        for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
            if url.startswith(prefix):
                rest = url[len(prefix) :]
                if rest and not rest.startswith("/") and rest != ":memory:":
                    return prefix + str(self.path(Path(rest)))
        return url

    def is_superuser(self, qualified_user: str) -> bool:
        return qualified_user in self.admins.superusers

    def is_catalog_manager(self, qualified_user: str) -> bool:
        """Named in ``[admins] catalog_managers`` (superusers hold that right anyway)."""
        return qualified_user in self.admins.catalog_managers


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to read: ``--config``, else ``$BOT_CONFIG``, else ``./bot.toml``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_config(path: str | Path | None = None) -> BotConfig:
    """Read and validate ``bot.toml``; raise :class:`ConfigError` naming the bad key."""
    file = config_path(path)
    try:
        raw = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found (use --config PATH or set {CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return parse_config(data, source=file)


def parse_config(data: dict[str, Any], *, source: Path) -> BotConfig:
    """Validate already-parsed TOML data; ``source`` names the file in error messages."""
    if "base_dir" in data:
        raise ConfigError(f"{source}: base_dir: unknown key")
    try:
        config = BotConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    return config.model_copy(update={"base_dir": source.resolve().parent})


def _describe(exc: ValidationError) -> str:
    """One line for the first error: ``[section] key: what is wrong (got value)``."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    sections, key = loc[:-1], loc[-1] if loc else "?"
    where = f"[{'.'.join(sections)}] {key}" if sections else key
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if error["type"] != "missing" and not isinstance(got, dict):
        message += f" (got {got!r})"
    more = len(exc.errors()) - 1
    return f"{where}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "MAX_DEBOUNCE_S",
    "AdminsConfig",
    "BotConfig",
    "BudgetsConfig",
    "CharactersConfig",
    "ConsoleConfig",
    "DiscordConfig",
    "EmbeddingConfig",
    "GroupsConfig",
    "ImagesConfig",
    "LLMConfig",
    "MemoryConfig",
    "OneBotConfig",
    "OpenAISpeechConfig",
    "PlatformsConfig",
    "Price",
    "PromptConfig",
    "ReplyConfig",
    "RetrievalConfig",
    "SchedulerConfig",
    "Section",
    "SendingConfig",
    "ServerConfig",
    "StorageConfig",
    "VoiceConfig",
    "WebConsoleConfig",
    "_describe",
    "config_path",
    "load_config",
    "parse_config",
    "zone",
]
