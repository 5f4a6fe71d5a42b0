"""The prompt as the base model sees it: a script, and where the character's line in it ends.

A base model has no chat template: it continues text. It gets a transcript that ends where the
character starts to speak (:func:`render_script`), and its continuation is cut at the end of that one
line (:class:`LineCutter`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine.packs import Scene
    from bot.engine.prompt import Prompt


@dataclass(slots=True, frozen=True)
class Script:
    """The completion prompt given to the base model, and what marks the end of the reply in it."""

    text: str
    label: str
    """The name the character speaks under in the transcript (the one its scenes use)."""
    speakers: tuple[str, ...]
    """Every speaker of the transcript: the reply ends where one of them starts a line."""
    quoted: bool
    """Lines are ``Name:「text」`` (Chinese) rather than ``Name: text`` (English)."""


def character_label(prompt: Prompt) -> str:
    """The name the character's lines carry in its scenes, e.g. ``Orla`` for "Orla Finch".

    Packs often write scenes under a short name while the pack's name is the full one; a base model
    continues far more faithfully when the last line starts with the same name as the examples.
    """
    counts = Counter(speaker for scene in prompt.scenes for speaker, _ in _rows(scene))
    if prompt.character in counts:
        return prompt.character
    parts = set(prompt.character.split())
    candidates = [name for name, _ in counts.most_common() if name in parts]
    return candidates[0] if candidates else prompt.character


def render_script(prompt: Prompt) -> Script:
    """Lay ``prompt`` out as a transcript for a base model, ending where the character speaks.

    The layout is :meth:`Prompt.to_completion`'s (persona, classic scenes, the chat, the opened line)
    with three changes measured on Gemma 3 270M: a one-line preface saying what the text is; the
    character speaking under its scene name (see :func:`character_label`); and, for English,
    ``Name: line`` instead of ``Name:「line」``: the model rarely closes a 「 in English text and
    trails off into stray quotes and markup instead, while a plain script line ends at the newline.
    """
    label = character_label(prompt)
    quoted = prompt.language == "zh"

    def line(speaker: str, text: str) -> str:
        return f"{speaker}:「{text}」" if quoted else f"{speaker}: {text}"

    scenes = [
        "\n".join(line(label if speaker == prompt.character else speaker, text) for speaker, text in rows)
        for rows in (_rows(scene) for scene in prompt.scenes)
    ]
    if quoted:
        parts = [
            f"下面是一段群聊记录。{label}（{prompt.character}）在群里和大家聊天，说话始终符合人物性格，"
            "每次回复一到三句话。",
            f"人物介绍：\n{prompt.persona.strip()}",
        ]
        if scenes:
            parts.append(f"{label}的经典场景：\n" + "\n###\n".join(scenes))
        chat_heading = "群聊记录："
    else:
        parts = [
            f"The following is a chat log from a group chat in which {label} ({prompt.character}) takes "
            f"part. {label} always answers in character, in one to three short sentences.",
            f"About {prompt.character}:\n{prompt.persona.strip()}",
        ]
        if scenes:
            parts.append(f"Scenes with {label}:\n" + "\n###\n".join(scenes))
        chat_heading = "Chat log:"
    chat = [line(label if turn.from_character else turn.speaker, turn.text) for turn in prompt.history]
    chat.append(line(prompt.message.speaker, prompt.message.text))
    opening = f"{label}:「" if quoted else f"{label}:"
    parts.append("\n".join([chat_heading, *chat, opening]))

    speakers = {label, prompt.character, prompt.message.speaker}
    speakers.update(turn.speaker for turn in prompt.history)
    speakers.update(speaker for scene in prompt.scenes for speaker, _ in _rows(scene))
    return Script("\n\n".join(parts), label, tuple(sorted(s for s in speakers if s.strip())), quoted)


def _rows(scene: Scene) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in scene.lines]


class LineCutter:
    """Finds where the character's line ends in the model's continuation.

    The line ends at ``」``, at a newline, or where the model starts a line for someone (``Tom:``,
    ``老周：``, any ``Name:「``) on the same line. Used while generating, to stop as soon as the line is
    over, and afterwards, to cut the reply there.
    """

    def __init__(self, script: Script) -> None:
        names = "|".join(re.escape(name) for name in sorted(script.speakers, key=len, reverse=True))
        self._own = re.compile(rf"^\s*(?:{re.escape(script.label)})\s*[:：]\s*「?")
        self._end = re.compile(
            rf"[」\n\r]|(?<!\w)(?:{names})\s*[:：]|(?<![\w.·-])\w[\w.·-]{{0,19}}[:：]\s*「"
        )

    def end(self, text: str) -> int | None:
        """Index in ``text`` (after the character's own name, if it repeated it) where the line ended."""
        own = self._own.match(text)
        start = own.end() if own else 0
        match = self._end.search(text, start)
        return match.start() if match else None

    def cut(self, text: str) -> str:
        """The character's line: what comes before its end, without its own name or stray quotes."""
        own = self._own.match(text)
        start = own.end() if own else 0
        end = self.end(text)
        line = text[start : len(text) if end is None else end]
        return _tidy(line)


_TRAILING_JUNK = re.compile(r"(?:\s*(?:</?[A-Za-z][^<>]{0,20}>|[«»「]))+\s*$")


def _tidy(line: str) -> str:
    """Strip whitespace, an opening ``「`` and trailing markup or guillemets the model trails off with."""
    line = line.strip().removeprefix("「").strip()
    return _TRAILING_JUNK.sub("", line).strip()
