"""The sections of ``bot.toml`` that set how the bot behaves in chats: manners, sending, budgets, the
scheduler and who may do what."""

from __future__ import annotations

from datetime import tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    field_validator,
)

from bot.config.section import Section

MAX_DEBOUNCE_S = 60.0


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; a :class:`ValueError` that says so when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Asia/Shanghai')") from None


class GroupsConfig(Section):
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


class SendingConfig(Section):
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


class Price(Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class BudgetsConfig(Section):
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


class SchedulerConfig(Section):
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


class AdminsConfig(Section):
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
