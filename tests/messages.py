"""Factories of :class:`~bot.messages.Incoming`, like NoneBot's ``tests/utils.py`` event factories."""

from __future__ import annotations

from itertools import count

from bot.messages import Incoming, Role, Sender

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
) -> Incoming:
    return Incoming(platform, "group", group, Sender(user, name, role), text, to_me, str(next(_ids)))


def private_message(text: str, *, user: str = "42", name: str = "Pip", platform: str = "onebot") -> Incoming:
    return Incoming(platform, "private", user, Sender(user, name), text, True, str(next(_ids)))
