"""Factories of :class:`~bot.messages.Incoming`, like NoneBot's ``tests/utils.py`` event factories."""

from __future__ import annotations

from itertools import count

from bot.errors import AttachmentError
from bot.messages import Attachment, Incoming, Role, Sender

_ids = count(1)


def group_message(
    text: str,
    *,
    group: str = "100",
    user: str = "42",
    name: str = "Pip",
    to_me: bool = False,
    role: Role = Role.MEMBER,
    platform: str = "onebot",
    files: tuple[Attachment, ...] = (),
) -> Incoming:
    return Incoming(
        platform, "group", group, Sender(user, name, role), text, to_me, str(next(_ids)), attachments=files
    )


def private_message(text: str, *, user: str = "42", name: str = "Pip", platform: str = "onebot") -> Incoming:
    return Incoming(platform, "private", user, Sender(user, name), text, True, str(next(_ids)))


def attachment(name: str, data: bytes) -> Attachment:
    """A file as a platform hands it over: fetched on demand, refused past the caller's limit."""

    async def fetch(max_bytes: int) -> bytes:
        if len(data) > max_bytes:
            raise AttachmentError(f"{name} is larger than {max_bytes:,} bytes")
        return data

    return Attachment(name, fetch, len(data))
