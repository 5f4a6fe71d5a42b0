"""Classify: is a message a command, the next step of a command, a call to characters, or room talk?

* ``/command ...`` (with or without ``@``) → the command registry (an unknown one is answered only
  when the bot was addressed);
* the next message of a user a command is asking questions (``/character create``) → that command;
* ``@bot ...``, a private message, or a message that opens with a character's name or alias
  (``Orla, ...`` / ``小满，...``) → :class:`Talk` with the characters it calls;
* anything else → :class:`Talk` calling no one: room talk.

Classifying reads nothing from the database and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands import Command, CommandRegistry, Conversations, parse_command
from bot.engine.packs import CharacterPack
from bot.engine.registry import PackRegistry
from bot.messages import Incoming

MAX_NAME_CHARS = 32
_NAME_UNSAFE = re.compile(r"[\s:：「」\[\]]+")


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a note of how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [… {len(text) - limit:,} more characters cut]"


def speaker_name(name: str, fallback: str) -> str:
    """A display name safe to put in the script: no brackets or colons that could fake a line."""
    cleaned = _NAME_UNSAFE.sub(" ", name).strip()[:MAX_NAME_CHARS]
    return cleaned or fallback


@dataclass(slots=True, frozen=True)
class CommandCall:
    """``/name args``; ``command`` is ``None`` when no command has that name."""

    name: str
    args: str
    command: Command | None


@dataclass(slots=True, frozen=True)
class Step:
    """The user's answer to the question a command is waiting on."""


@dataclass(slots=True, frozen=True)
class Talk:
    """A message that is not a command: ``calls`` are the characters it names, ``text`` what they
    hear (the message without their names); no calls and not ``to_me`` is room talk."""

    calls: tuple[CharacterPack, ...]
    text: str
    whole: str


Kind = CommandCall | Step | Talk


class Classifier:
    """Tells what a message is (see the module docstring)."""

    def __init__(
        self, commands: CommandRegistry, conversations: Conversations, packs: PackRegistry, max_calls: int
    ) -> None:
        self.commands = commands
        self.conversations = conversations
        self.packs = packs
        self.max_calls = max_calls

    def classify(self, incoming: Incoming, text: str) -> Kind:
        if (parsed := parse_command(text)) is not None:
            name, args = parsed
            return CommandCall(name, args, self.commands.get(name))
        if self.conversations.waiting(incoming.key, incoming.sender.user_id):
            return Step()
        calls, rest = self.packs.called(text, self.max_calls)
        return Talk(tuple(calls), rest if calls else text, text)

    def is_addressed(self, incoming: Incoming) -> bool:
        """Whether the bot will answer ``incoming`` (platforms show "typing…" for these)."""
        text = incoming.text.strip()
        if not text:
            return False
        kind = self.classify(incoming, text)
        if isinstance(kind, CommandCall):
            return incoming.to_me or kind.command is not None
        if isinstance(kind, Step):
            return True
        return incoming.to_me or bool(kind.calls)
