"""Training conversations: a character's dialogue as user and assistant turns, from each source.

A conversation is laid out as the bot lays out a reply's prompt (:meth:`bot.engine.prompt.Prompt.
to_messages`): the other speakers' lines are user turns written ``Name:「line」`` (consecutive lines in
one turn, names kept), the character's lines are plain assistant turns. A model trained on it is then
asked in the very shape it learnt. Turns alternate, start with the user and end with the character;
what the character said before anyone spoke, and what others said after its last line, has nothing
to teach and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bot.engine.prompt import Turn
from bot.errors import ExportError
from bot.extract.speakers import NARRATOR
from bot.importers.corpora import qa_blocks
from bot.importers.limits import ImportLimits, read_source_text

if TYPE_CHECKING:
    from bot.engine.packs import CharacterPack
    from bot.messages import ChatKey
    from storage.messages import StoredMessage

Role = Literal["user", "assistant"]
Source = Literal["scene", "corpus", "chat"]

SESSION_GAP = timedelta(minutes=30)
"""Silence after which a chat's next message starts a new conversation."""
MAX_TURNS = 16
"""The most turns in one conversation cut from a chat; a longer session is cut at a reply."""
PSEUDONYM = {"en": "Member {number}", "zh": "群友{number}"}


@dataclass(slots=True, frozen=True)
class TrainingTurn:
    role: Role
    text: str


@dataclass(slots=True)
class Conversation:
    """One training example: alternating turns, the first the user's, the last the character's."""

    source: Source
    group: str
    """The unit the train/validation split keeps together: a scene, a corpus pair, a chat."""
    origin: str
    """Where it came from, for people: ``scenes/014.txt``, ``qa.txt:12``, ``onebot:group:42 #3``."""
    turns: list[TrainingTurn] = field(default_factory=list)

    @property
    def replies(self) -> int:
        return sum(turn.role == "assistant" for turn in self.turns)


def dialogue(lines: Iterable[tuple[str, str, bool]]) -> list[TrainingTurn]:
    """``(speaker, text, is_character)`` lines as alternating turns: user lines rendered with their
    speaker's name and merged while nobody answers, the character's lines merged while it goes on."""
    turns: list[TrainingTurn] = []
    for speaker, text, by_character in lines:
        text = text.strip()
        if not text:
            continue
        role: Role = "assistant" if by_character else "user"
        said = text if by_character else Turn(speaker, text).render()
        if turns and turns[-1].role == role:
            turns[-1] = TrainingTurn(role, f"{turns[-1].text}\n{said}")
        else:
            turns.append(TrainingTurn(role, said))
    while turns and turns[0].role == "assistant":
        turns.pop(0)
    while turns and turns[-1].role == "user":
        turns.pop()
    return turns


def _is_character(pack: CharacterPack, speaker: str) -> bool:
    return speaker.casefold() in {name.casefold() for name in pack.names}


def from_scenes(pack: CharacterPack) -> list[Conversation]:
    """One conversation per classic scene in which the character answers somebody."""
    conversations = []
    for scene in pack.scenes:
        turns = dialogue((line.speaker, line.text, _is_character(pack, line.speaker)) for line in scene.lines)
        if turns:
            conversations.append(Conversation("scene", f"scene:{scene.id}", f"scenes/{scene.id}.txt", turns))
    return conversations


def from_corpus(pack: CharacterPack, path: Path, limits: ImportLimits) -> list[Conversation]:
    """A question/answer corpus (``Asker: question`` / ``Name: answer``, a blank line between pairs,
    as ``characters import`` reads it): one conversation per block the character answers in."""
    blocks = qa_blocks(read_source_text(path, limits), path)
    speakers = {line.speaker for block in blocks for line in block if line.speaker}
    if not any(_is_character(pack, speaker) for speaker in speakers):
        named = ", ".join(sorted(speakers)[:5]) or "nobody"
        raise ExportError(
            f"{path}: no line is by {pack.name} (or {', '.join(pack.aliases) or 'an alias'}); "
            f"its speakers are {named}"
        )
    narrator = NARRATOR.get(pack.settings.language, NARRATOR["en"])
    conversations = []
    for block in blocks:
        turns = dialogue(
            (line.speaker or narrator, line.text, _is_character(pack, line.speaker or narrator))
            for line in block
        )
        if turns:
            where = f"{path.name}:{block[0].line}"
            conversations.append(Conversation("corpus", f"corpus:{where}", where, turns))
    return conversations


class Pseudonyms:
    """Stable stand-ins for a chat's members: ``Member 1`` for the first who wrote, and so on.

    Numbered by first appearance, so the same stored chat always gives the same names, and nothing of
    the real id or name can be read back from them. ``keep`` are names never replaced (the
    character's own, which a member may share).
    """

    def __init__(self, language: str, keep: Iterable[str] = ()) -> None:
        self.pattern = PSEUDONYM.get(language, PSEUDONYM["en"])
        self.keep = {name.casefold() for name in keep}
        self._by_user: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._finder: re.Pattern[str] | None = None

    def of(self, user_id: str, *names: str) -> str:
        pseudonym = self._by_user.get(user_id)
        if pseudonym is None:
            pseudonym = self._by_user[user_id] = self.pattern.format(number=len(self._by_user) + 1)
        for name in (name.strip() for name in names):
            if len(name) >= 2 and name.casefold() not in self.keep and name not in self._names:
                self._names[name] = pseudonym
                self._finder = None
        return pseudonym

    def replace_names(self, text: str) -> str:
        """``text`` with every member's display name replaced by its pseudonym: longest first (``Ann
        Lee`` before ``Ann``), and a name in Latin letters only as a whole word (``Al`` is not the start
        of ``Also``)."""
        if not self._names:
            return text
        if self._finder is None:
            names = sorted(self._names, key=len, reverse=True)
            self._finder = re.compile(
                "|".join(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])" for name in names)
            )
        return self._finder.sub(lambda match: self._names[match.group()], text)


def from_chat(pack: CharacterPack, key: ChatKey, messages: Sequence[StoredMessage]) -> list[Conversation]:
    """The chat's exchanges with the character (oldest first): a conversation per session (a pause of
    :data:`SESSION_GAP` ends one), cut at a reply after :data:`MAX_TURNS` turns; members appear as
    pseudonyms, in their speaker names and wherever their display names are written."""
    pseudonyms = Pseudonyms(pack.settings.language, keep=pack.names)
    # NOTE: every member is named first, so a name is replaced even in a line written before its
    # owner's first message.
    speakers = [
        None
        if message.role == "character"
        else pseudonyms.of(message.user_id, message.speaker, message.user_name)
        for message in messages
    ]
    sessions: list[list[tuple[str, str, bool]]] = []
    previous = None
    for message, speaker in zip(messages, speakers, strict=True):
        if previous is None or message.created_at - previous > SESSION_GAP:
            sessions.append([])
        previous = message.created_at
        text = pseudonyms.replace_names(message.text)
        sessions[-1].append((speaker or pack.name, text, speaker is None))
    conversations: list[Conversation] = []
    label = str(key)
    for session in sessions:
        for turns in _cut(dialogue(session)):
            number = len(conversations) + 1
            conversations.append(Conversation("chat", f"chat:{label}", f"{label} #{number}", turns))
    return conversations


def _cut(turns: list[TrainingTurn]) -> list[list[TrainingTurn]]:
    """``turns`` in pieces of at most :data:`MAX_TURNS`, each ending with a reply."""
    pieces = []
    for start in range(0, len(turns), MAX_TURNS):
        piece = turns[start : start + MAX_TURNS]
        if piece and piece[-1].role == "assistant":
            pieces.append(piece)
    return pieces
