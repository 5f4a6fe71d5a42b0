"""What crosses the platform boundary: :class:`Incoming` in, :class:`Reply` out.

Adapters in ``plugins/`` build these from platform events and turn replies back into platform
messages; nothing in ``bot/`` ever sees a platform object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

ChatType = Literal["group", "private"]


class Role(StrEnum):
    """A sender's standing in the chat, as the platform reports it."""

    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"


@dataclass(slots=True, frozen=True)
class ChatKey:
    """Identifies one conversation: a group, or a private chat with one user.

    Everything the bot stores about a conversation is keyed by ``(platform, chat_id)``. Private
    chats get ``chat_id = "private:<user id>"`` so they can never collide with a group id.
    """

    platform: str
    chat_id: str

    @classmethod
    def for_chat(cls, platform: str, chat_type: ChatType, raw_id: str) -> ChatKey:
        return cls(platform, raw_id if chat_type == "group" else f"private:{raw_id}")

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(slots=True, frozen=True)
class Sender:
    """The author of an incoming message."""

    user_id: str
    name: str
    role: Role = Role.MEMBER


@dataclass(slots=True, frozen=True)
class Attachment:
    """A file sent with a message, fetched only when a command wants it.

    ``fetch(max_bytes)`` returns the file's bytes; the platform raises
    :class:`~bot.errors.AttachmentError` when the file is gone, unreachable, or larger than
    ``max_bytes``. ``size`` is what the platform announced, when it did.
    """

    name: str
    fetch: Callable[[int], Awaitable[bytes]]
    size: int | None = None


Attachments = Callable[[], Awaitable[tuple[Attachment, ...]]]
"""Looks up the files of another message (the one being replied to) on demand."""


@dataclass(slots=True)
class Incoming:
    """One message from a platform, already reduced to what the core needs.

    ``text`` is the plain text with the leading mention of the bot removed; ``to_me`` is true when
    the bot was mentioned, replied to, or the chat is private.

    ``parent_id`` names the chat this one hangs off (a Discord thread's channel): the parent's
    character carries over until this chat picks its own, while memory stays per chat.
    ``character`` is the pack id of the character the platform says is addressed, such as the
    author of the message being replied to.
    """

    platform: str
    chat_type: ChatType
    chat_id: str
    sender: Sender
    text: str
    to_me: bool = False
    message_id: str | None = None
    parent_id: str | None = None
    character: str | None = None
    mentions: tuple[str, ...] = ()
    """Platform user ids of the people the message mentions (the bot itself excluded)."""
    attachments: tuple[Attachment, ...] = ()
    """Files sent with the message (documents, images)."""
    quoted: Attachments | None = None
    """The files of the message this one replies to; ``None`` when it replies to none."""
    account: str = ""
    """The bot account that received it (OneBot's self id), which posts the replies; empty when the
    platform has one."""

    @property
    def key(self) -> ChatKey:
        return ChatKey.for_chat(self.platform, self.chat_type, self.chat_id)

    @property
    def parent_key(self) -> ChatKey | None:
        return None if self.parent_id is None else ChatKey(self.platform, self.parent_id)

    @property
    def qualified_user(self) -> str:
        """``platform:user_id``, the form used by ``[admins] superusers``."""
        return f"{self.platform}:{self.sender.user_id}"


@dataclass(slots=True, frozen=True)
class Image:
    """A picture to post with a reply (a scene screenshot)."""

    path: Path
    caption: str = ""


@dataclass(slots=True, frozen=True)
class Voice:
    """A voice message: the reply spoken (synthesised, or the character's own recorded line)."""

    path: Path
    duration_s: float
    recorded: bool = False
    """The character's own line cut from the video, not synthesised speech."""

    @property
    def mime(self) -> str:
        return _AUDIO_TYPES.get(self.path.suffix.lower(), "application/octet-stream")


_AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
}


@dataclass(slots=True, frozen=True)
class File:
    """A document to post with a reply (an exported pack); ``name`` is what the chat shows."""

    path: Path
    name: str


@dataclass(slots=True)
class Reply:
    """What the bot says back, in the same chat as the message it answers.

    ``quote`` asks the adapter to quote the original message (reply segment or @ back);
    ``character`` is the pack id of the speaking character, ``None`` for system messages such as
    command output.
    """

    text: str
    images: list[Image] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    quote: bool = True
    character: str | None = None
    reply_to: str | None = None
    """The platform id of the message to quote (set by the platform adapter when it sends)."""
    in_history: bool = False
    """The character's own line: it joins the character's history in the chat once recorded."""
    delivery_id: int | None = None
    """Its record in the :class:`~bot.ledger.Ledger`, which the sender settles once it is posted."""
    voice: Voice | None = None
    """Posted as a voice message after the text (OneBot ``record``, a Discord audio file)."""
    voice_only: bool = False
    """Post the voice without the text (``/voice only``, and the voice that follows a text reply); the
    text stays in the record all the same."""
    settled: asyncio.Event | None = None
    """Set once the ledger settles the reply (posted or not): a voice that follows it waits for it."""

    @property
    def attached(self) -> bool:
        """Whether it carries more than text (screenshots, files, a voice): never merged with others."""
        return bool(self.images or self.files or self.voice)
