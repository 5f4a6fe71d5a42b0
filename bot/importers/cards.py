"""SillyTavern character cards → a pack draft: V1 and V2/V3 cards as PNG, JSON or CHARX.

A card PNG carries the card as base64 JSON in a ``ccv3`` (V3) or ``chara`` (V2) text chunk; V3 is
preferred when both are present. CHARX is a zip with ``card.json`` and the assets it names. A V1 card is
the flat JSON object (name, description, personality, scenario, first_mes, mes_example).

The mapping (the same functions serve :mod:`bot.importers.export`, so an unchanged pack exports the
card's own text back):

* persona = description, then personality, scenario and system_prompt as labelled sections;
  ``{{char}}`` becomes the name and ``{{user}}`` "the user";
* greeting = first_mes; scenes = mes_example split on ``<START>``, ``{{user}}:`` / ``{{char}}:`` turns
  becoming ``User:`` / ``<Name>:`` lines (or one scene from first_mes when there is no example);
* ``character_book`` entries → ``lorebook.json``; the card picture → ``images/avatar.png``;
* the card's ``data`` object verbatim → ``card.json`` (alternate greetings, tags, extensions...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.engine.pack_schema import LoreEntry
from bot.errors import PackError
from bot.extract.speakers import NARRATOR, Language, clean_speaker, detect_language, split_prefix
from bot.importers.drafts import (
    CARD_FILE,
    PackDraft,
    clean_text,
    counted,
    first_word_alias,
    one_line,
    scene_line,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
CARD_CHUNKS = ("ccv3", "chara")
TEXT_FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
)

USER_IN_PROSE: dict[Language, str] = {"en": "the user", "zh": "用户"}
"""What ``{{user}}`` becomes in the persona and greeting, where there is no name to put."""
USER_SPEAKER: dict[Language, str] = {"en": "User", "zh": "用户"}
"""The speaker of ``{{user}}:`` turns in scenes."""
_LABELS: dict[Language, tuple[str, str, str, str]] = {
    "en": ("Personality: ", "Scenario: ", "Instructions: ", "You are {name}."),
    "zh": ("性格：", "场景：", "指令：", "你是{name}。"),
}
_MACRO = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<(bot|user)>", re.IGNORECASE)
_TURN = re.compile(
    r"^(?:\{\{\s*(?P<macro>char|user)\s*\}\}|<(?P<old>bot|user)>)\s*[:：]\s*(?P<text>.*)$", re.IGNORECASE
)
_START = re.compile(r"<start>", re.IGNORECASE)


@dataclass(slots=True)
class Card:
    """A parsed card: its ``data`` object (the flat object for V1) and where it came from."""

    data: dict[str, Any]
    spec: str
    path: Path
    where: str = ""
    """A prefix for messages about a card inside a file (``chunk 'ccv3': ``)."""

    @property
    def label(self) -> str:
        return {SPEC_V3: "Character Card V3", SPEC_V2: "Character Card V2"}.get(
            self.spec, "Character Card V1"
        )

    def field(self, key: str) -> str:
        """The name of ``key`` as the card author knows it: ``data.name`` (V2/V3) or ``name`` (V1)."""
        return key if self.spec == "v1" else f"data.{key}"

    def error(self, message: str) -> PackError:
        return PackError(self.path, f"{self.where}{message}")


def text_field(data: Mapping[str, Any], key: str) -> str:
    """A text field of a card, ``""`` when it is missing or not text."""
    value = data.get(key)
    return clean_text(value) if isinstance(value, str) else ""


def substitute(text: str, name: str, user: str) -> str:
    """SillyTavern macros: ``{{char}}``/``<BOT>`` → ``name``, ``{{user}}``/``<USER>`` → ``user``."""

    def replace(match: re.Match[str]) -> str:
        key = (match[1] or match[2]).lower()
        return name if key in {"char", "bot"} else user if key == "user" else ""

    return _MACRO.sub(replace, text)


def card_language(data: Mapping[str, Any]) -> Language:
    return detect_language(text_field(data, key) for key in TEXT_FIELDS)


def build_persona(data: Mapping[str, Any], name: str, language: Language) -> str:
    """The persona a card gives: description, then personality, scenario and system prompt, labelled."""
    personality, scenario, instructions, _ = _LABELS[language]
    sections = [
        ("", "description"),
        (personality, "personality"),
        (scenario, "scenario"),
        (instructions, "system_prompt"),
    ]
    parts = []
    for label, key in sections:
        text = substitute(text_field(data, key), name, USER_IN_PROSE[language]).strip()
        if text:
            parts.append(f"{label}{text}")
    return "\n\n".join(parts)


def card_greeting(data: Mapping[str, Any], name: str, language: Language) -> str:
    return substitute(text_field(data, "first_mes"), name, USER_IN_PROSE[language]).strip()


def _example_scenes(example: str, name: str, language: Language) -> list[list[tuple[str, str]]]:
    user = USER_SPEAKER[language]
    speaker_name = clean_speaker(name) or name
    folded = name.casefold()
    scenes: list[list[tuple[str, str]]] = []
    for block in _START.split(example):
        turns: list[list[str]] = []
        for raw in block.split("\n"):
            line = raw.strip()
            if not line:
                continue
            turn = _TURN.match(line)
            if turn is not None:
                who = (turn["macro"] or turn["old"]).lower()
                speaker, text = (speaker_name if who in {"char", "bot"} else user), turn["text"]
            elif line.casefold().startswith(folded) and line[len(name) :].lstrip()[:1] in {":", "："}:
                speaker, text = speaker_name, line[len(name) :].lstrip()[1:]
            elif (prefixed := split_prefix(substitute(line, name, user))) and "*" not in prefixed[0]:
                speaker, text = clean_speaker(prefixed[0]) or prefixed[0], prefixed[1]
            elif turns:
                turns[-1][1] += " " + line
                continue
            else:
                speaker, text = NARRATOR[language], line
            turns.append([speaker, text])
        scene = []
        for speaker, text in turns:
            words = " ".join(substitute(text, name, user).split())
            if words:
                scene.append((speaker, words))
        if scene:
            scenes.append(scene)
    return scenes


def _greeting_scene(data: Mapping[str, Any], name: str, language: Language) -> list[list[tuple[str, str]]]:
    greeting = " ".join(card_greeting(data, name, language).split())
    return [[(clean_speaker(name) or name, greeting)]] if greeting else []


def card_scenes(data: Mapping[str, Any], name: str, language: Language) -> list[list[tuple[str, str]]]:
    """The scenes a card gives as ``(speaker, text)`` turns: its examples, else its greeting."""
    return _example_scenes(text_field(data, "mes_example"), name, language) or _greeting_scene(
        data, name, language
    )


def _flag(card: Card, raw: Mapping[str, Any], at: str, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise card.error(f"{at}.{key} must be true or false, got {value!r}")
    return value


def card_lore(card: Card, name: str, language: Language) -> tuple[list[LoreEntry], list[str]]:
    """``character_book`` entries as lorebook entries, and notes on what was left out."""
    book = card.data.get("character_book")
    if book is None:
        return [], []
    where = card.field("character_book")
    if not isinstance(book, Mapping):
        raise card.error(f"{where} must be an object with 'entries'")
    raw_entries = book.get("entries") or []
    if not isinstance(raw_entries, list):
        raise card.error(f"{where}.entries must be a list")
    entries: list[LoreEntry] = []
    empty: list[str] = []
    regex: list[str] = []
    for index, raw in enumerate(raw_entries):
        at = f"{where}.entries[{index}]"
        if not isinstance(raw, Mapping):
            raise card.error(f"{at} must be an object")
        content = raw.get("content")
        if content is not None and not isinstance(content, str):
            raise card.error(f"{at}.content must be text")
        text = substitute(clean_text(content or ""), name, USER_IN_PROSE[language]).strip()
        if not text:
            empty.append(str(index))
            continue
        keys = raw.get("keys") or []
        if isinstance(keys, str):
            keys = keys.split(",")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise card.error(f"{at}.keys must be a list of strings")
        order = raw.get("insertion_order", 100)
        if order is None:
            order = 100
        whole = isinstance(order, int) or (isinstance(order, float) and order.is_integer())
        if isinstance(order, bool) or not whole:
            raise card.error(f"{at}.insertion_order must be a whole number, got {order!r}")
        label = raw.get("name") or raw.get("comment") or ""
        if raw.get("use_regex") is True:
            regex.append(str(index))
        entries.append(
            LoreEntry(
                keys=[key.strip() for key in keys if key.strip()],
                content=text,
                name=label if isinstance(label, str) else "",
                enabled=_flag(card, raw, at, "enabled", True),
                constant=_flag(card, raw, at, "constant", False),
                case_sensitive=_flag(card, raw, at, "case_sensitive", False),
                insertion_order=int(order),
            )
        )
    notes = []
    if empty:
        notes.append(
            f"{counted(len(empty), 'lorebook entry', 'lorebook entries')} without content dropped "
            f"(entries {', '.join(empty)})"
        )
    if regex:
        notes.append(f"lorebook entries {', '.join(regex)} use regex keys; they are matched as plain text")
    return entries, notes


def parse_card(raw: str, path: Path, *, where: str = "", line_numbers: bool = True) -> Card:
    """A card from its JSON text; invalid JSON is reported with its line and column."""
    try:
        obj: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PackError(
            path,
            f"{where}invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno if line_numbers else None,
        ) from None
    if not isinstance(obj, dict):
        raise PackError(path, f"{where}a character card is a JSON object, not {type(obj).__name__}")
    spec = obj.get("spec")
    if isinstance(spec, str) and spec.startswith("chara_card_"):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise PackError(path, f"{where}'data' must be an object in a {spec} card")
        return Card(data, spec, path, where)
    return Card(obj, "v1", path, where)


def _check_fields(card: Card) -> str:
    for key in TEXT_FIELDS:
        value = card.data.get(key)
        if value is not None and not isinstance(value, str):
            raise card.error(f"{card.field(key)} must be text, got {type(value).__name__}")
    name = " ".join(text_field(card.data, "name").split())
    if not name:
        raise card.error(f"the card has no name ({card.field('name')} is missing or empty)")
    return name


def card_draft(card: Card) -> PackDraft:
    """The pack a card describes (without its picture: that depends on the container)."""
    name = _check_fields(card)
    notes = [card.label]
    if len(name) > 64:
        name = name[:64].rstrip()
        notes.append(f"the name was cut to 64 characters: {name!r}")
    data = card.data
    language = card_language(data)
    persona = build_persona(data, name, language)
    if not persona:
        persona = _LABELS[language][3].format(name=name)
        notes.append("the card has no description, personality, scenario or system prompt; persona is a stub")
    examples = _example_scenes(text_field(data, "mes_example"), name, language)
    turns = examples or _greeting_scene(data, name, language)
    scenes = [[line for speaker, text in scene if (line := scene_line(speaker, text))] for scene in turns]
    scenes = [scene for scene in scenes if scene]
    if not scenes:
        raise card.error(
            f"the card has neither example dialogue ({card.field('mes_example')}) nor a greeting "
            f"({card.field('first_mes')}); a pack needs at least one scene"
        )
    if examples:
        notes.append(f"{counted(len(scenes), 'scene', 'scenes')} from mes_example")
    else:
        notes.append("no example dialogue: one scene made from first_mes")
    alternates = data.get("alternate_greetings")
    if isinstance(alternates, list) and alternates:
        notes.append(
            f"{counted(len(alternates), 'alternate greeting', 'alternate greetings')} kept in {CARD_FILE}"
        )
    lore, lore_notes = card_lore(card, name, language)
    if lore:
        notes.append(counted(len(lore), "lorebook entry", "lorebook entries"))
    notes.extend(lore_notes)
    try:
        original = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    except UnicodeEncodeError:
        original = json.dumps(data, indent=2).encode("ascii")
    description = substitute(text_field(data, "description"), name, USER_IN_PROSE[language])
    return PackDraft(
        name=name,
        language=language,
        scenes=scenes,
        persona=persona,
        aliases=first_word_alias(name),
        description=one_line(description) or one_line(persona),
        greeting=card_greeting(data, name, language),
        lore=lore,
        files={CARD_FILE: original},
        notes=notes,
    )
