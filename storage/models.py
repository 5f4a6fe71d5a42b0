"""Tables. Everything about a conversation is keyed by ``(platform, chat_id)``.

Schema changes go through an Alembic migration in ``storage/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table behind ``model``: statements that run for every message are built once on it,
    so that executing them does no ORM work."""
    return cast(Table, model.__table__)


class Chat(Base):
    """One group or private chat: which character is active, and where its memory starts."""

    __tablename__ = "chats"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    active_character: Mapped[str | None] = mapped_column(String(64))
    memory_floor: Mapped[int] = mapped_column(BigInteger, default=0)
    """Messages with an id at or below this are forgotten by ``/reset`` (kept, but not recalled)."""
    images_enabled: Mapped[bool | None] = mapped_column(Boolean)
    """``/images on|off``; ``None`` follows ``[images] enabled``."""
    room_context: Mapped[bool | None] = mapped_column(Boolean)
    """``/room on|off``: keep talk addressed to no character; ``None`` follows ``[memory] room_context``."""
    chattiness: Mapped[float | None] = mapped_column(Float)
    """``/chatty``: the chance of joining talk unprompted; ``None`` follows ``[groups] chattiness``."""
    debounce_s: Mapped[float | None] = mapped_column(Float)
    """``/debounce``: seconds to wait for more of a burst; ``None`` follows ``[groups] debounce_s``."""
    voice_mode: Mapped[str | None] = mapped_column(String(8))
    """``/voice on|off|only``; ``None`` follows ``[voice] mode``."""
    training: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """``/training on|off``: the chat's admins let its exchanges be exported as training data."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Message(Base):
    """A message said in a chat, by a user or by a character.

    ``character_id`` is the character the message was addressed to (user) or spoken by
    (character), ``None`` for talk in the room addressed to no one. A character's history in a chat is
    the messages carrying its id plus the room talk: the witness rule. ``user_name`` is the display
    name at the time; prompts use the participant's stable name.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    character_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_messages_chat_character", "platform", "chat_id", "character_id", "id"),
        Index("ix_messages_chat_role_created_at", "platform", "chat_id", "role", "created_at"),
    )


class ChatAdmin(Base):
    """A user a superuser made a bot admin of one chat (``/admin add``)."""

    __tablename__ = "chat_admins"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DisabledCharacter(Base):
    """A character hidden in one chat (``/character disable``); other chats still have it."""

    __tablename__ = "disabled_characters"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    character_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Participant(Base):
    """A user of a chat and the name characters know them by, fixed when first seen.

    Renaming oneself on the platform does not change it, so nobody can take another's name in the
    prompt; a name already taken in the chat gets the end of the user id appended.
    """

    __tablename__ = "participants"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("platform", "chat_id", "name"),)


class Summary(Base):
    """What a character remembers of a chat's older messages, in the model's words.

    It covers the character's messages up to ``upto_id``; newer ones are still read as they were.
    """

    __tablename__ = "summaries"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    character_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    upto_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Greeting(Base):
    """A chat's daily in-character greeting (``/greet on 08:30``), kept so it survives restarts.

    ``last_sent`` is the local date of the last greeting; claiming a day by updating it makes sure a
    chat is greeted once a day, even by several processes or after a restart.
    """

    __tablename__ = "greetings"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[str] = mapped_column(String(5))
    """``HH:MM`` in ``timezone``."""
    timezone: Mapped[str] = mapped_column(String(64))
    """An IANA name; empty for the machine's own zone."""
    last_sent: Mapped[str | None] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageClaim(Base):
    """A platform message some bot process took on: the first to insert the row answers it.

    Two bot accounts in one group (or a redelivered event) see the same message; only the process
    that claims it stores and answers it.
    """

    __tablename__ = "message_claims"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(64))
    """The claiming runtime, ``host:pid:random``."""
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class CatalogChange(Base):
    """A character pack served or removed by one process; the others read these to follow."""

    __tablename__ = "catalog_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    """``serve`` (read the folder again) or ``remove``."""
    origin: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Usage(Base):
    """Tokens one member's messages cost in a chat on one day, per model (prompt + completion)."""

    __tablename__ = "usage"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """``YYYY-MM-DD`` in ``[scheduler] timezone``."""
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    voice_chars: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Characters spoken by a priced speech engine (``model`` names it)."""
    voice_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Milliseconds of speech it made."""

    __table_args__ = (Index("ix_usage_day", "day"), Index("ix_usage_chat_day", "platform", "chat_id", "day"))


class Delivery(Base):
    """Something the bot said in a chat, recorded before it is posted, with whether it was.

    ``state`` is ``pending`` until the platform took it, then ``posted``; ``failed`` when the platform
    refused it every time, ``dropped`` when the send queue held it back (the same text twice in a row),
    ``expired`` when the bot stopped before posting it and came back too late to still say it. A
    character's line (``message_id``) that was never posted is left out of the prompt history.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(128), default="")
    """The bot account that should post it (OneBot's self id); empty when the platform has one."""
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The stored character line this posts (``messages.id``), ``None`` for command output."""
    answers: Mapped[str | None] = mapped_column(String(128))
    """The platform id of the message this answers (quoted when ``quote``)."""
    character_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    images: Mapped[str] = mapped_column(Text, default="[]")
    """Paths of the screenshots posted with it, as a JSON list."""
    voice: Mapped[str | None] = mapped_column(Text)
    """The path of the voice message posted with it (after its text, or alone when ``voice_only``)."""
    voice_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    quote: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    process: Mapped[str] = mapped_column(String(64), default="")
    """The bot process whose send queue holds it while pending."""
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_deliveries_state_created_at", "state", "created_at"),
        Index("ix_deliveries_answers", "platform", "chat_id", "answers"),
    )


class Notice(Base):
    """A line the governor said once to a chat (``user_id`` empty) or to one member of it: "slow
    down" (``kind`` ``slow_down``, standing until that member, or the chat with room to spare, is
    answered again) or "that's all for today" (``spent``, standing for ``day``).

    Kept in the database, so it is said once across restarts and processes.
    """

    __tablename__ = "notices"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    """``YYYY-MM-DD`` in ``[scheduler] timezone`` when it was said."""
    text: Mapped[str] = mapped_column(Text)
    """The line said (the next notice in the chat picks another)."""
    told_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Trace(Base):
    """Why a character's reply came out as it did (scenes, lore, memory, prompt budgets, the reply
    check), kept ``[memory] trace_days`` for the web console's inspector; the JSON is
    :class:`bot.traces.ReplyTrace`'s."""

    __tablename__ = "traces"

    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    """The delivery of the reply (``deliveries.id``)."""
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    character_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    trace: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_traces_chat_delivery", "platform", "chat_id", "delivery_id"),)
