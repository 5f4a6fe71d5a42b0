"""Who says a line: the speaker map, ``Name: line`` prefixes, the character's names, the narrator.

Subtitles name speakers in different ways (the ASS ``Name``/actor field, a ``Name:`` prefix in the text,
one ASS style per character) and often with spellings that differ from the pack's. Everything that turns
those into one canonical speaker lives here, so every input format attributes lines the same way.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.errors import ExtractError
from bot.extract.textfiles import read_text

Language = Literal["en", "zh"]

NARRATOR: dict[Language, str] = {"en": "Narrator", "zh": "旁白"}
"""The speaker written for lines nobody could be named for (narration, signs, unknown voices)."""

_PREFIX = re.compile(r"^(?P<speaker>[^:：「」]{1,24}?)\s*[:：]\s*(?P<text>\S.*)$")
_NOT_A_NAME = re.compile(r"[,!?;。，！？；…\"“”()（）\[\]]|\.\.|^[\d\s.]+$|^https?$", re.IGNORECASE)
_UNSAFE = re.compile(r"[:：「」\s]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def clean_speaker(raw: str) -> str | None:
    """A speaker name the scene format can hold (no ``:``, ``「」`` or line breaks), or ``None``."""
    name = _UNSAFE.sub(" ", raw).strip()[:40].strip()
    return name or None


def strip_quotes(text: str) -> str:
    """``「line」`` → ``line``: the pack format adds the quotes back."""
    text = text.strip()
    if text.startswith("「") and text.endswith("」"):
        text = text[1:-1].strip()
    return text


def split_prefix(text: str) -> tuple[str, str] | None:
    """``Name: line`` / ``Name：line`` → ``(Name, line)``; ``None`` when the text has no speaker prefix.

    A prefix must look like a name: at most four words and 24 characters, no sentence punctuation and not
    a number, so ``10:30 already?`` or ``Wait, look: a ship!`` stays whole.
    """
    match = _PREFIX.match(text.strip())
    if match is None:
        return None
    speaker = match["speaker"].strip()
    if not speaker or len(speaker.split()) > 4 or _NOT_A_NAME.search(speaker):
        return None
    if match["text"].startswith("//"):
        return None
    body = strip_quotes(match["text"])
    return (speaker, body) if body else None


@dataclass(slots=True)
class SpeakerMap:
    """``--speaker-map``: how names in the input become speakers in the pack.

    A TOML (or JSON, same shape) file; every table is optional and keys match case-insensitively::

        skip_styles = ["OP", "ED", "Sign"]   # ASS styles that are not dialogue: dropped

        [names]       # a name as written (ASS Name/actor field or a "Name:" prefix) → speaker
        "O. Finch" = "Orla"
        "Voice" = ""          # "" → narrator/other

        [styles]      # an ASS style → speaker, for lines with no Name field and no prefix
        "Kyon-Thoughts" = "Kyon"
    """

    names: dict[str, str] = field(default_factory=dict)
    styles: dict[str, str] = field(default_factory=dict)
    skip_styles: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: Path | str = "speaker map") -> SpeakerMap:
        """Build a map from parsed TOML/JSON; a wrong shape names the key."""
        unknown = sorted(set(data) - {"names", "styles", "skip_styles"})
        if unknown:
            raise ExtractError(f"{source}: unknown key {unknown[0]!r} (use names, styles, skip_styles)")
        tables: dict[str, dict[str, str]] = {}
        for key in ("names", "styles"):
            table = data.get(key, {})
            if not isinstance(table, Mapping) or not all(isinstance(v, str) for v in table.values()):
                raise ExtractError(f'{source}: {key} must be a table of name = "speaker" strings')
            tables[key] = {str(k).casefold().strip(): v for k, v in table.items()}
        skip = data.get("skip_styles", [])
        if not isinstance(skip, list) or not all(isinstance(style, str) for style in skip):
            raise ExtractError(f"{source}: skip_styles must be a list of style names")
        return cls(tables["names"], tables["styles"], frozenset(style.casefold().strip() for style in skip))

    @classmethod
    def load(cls, path: Path) -> SpeakerMap:
        """Read a ``.toml`` or ``.json`` speaker map."""
        text = read_text(path)
        try:
            data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except json.JSONDecodeError as exc:
            raise ExtractError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ExtractError(f"{path}: invalid TOML: {exc}") from None
        if not isinstance(data, dict):
            raise ExtractError(f"{path}: expected a table/object at the top")
        return cls.from_mapping(data, path)

    def skips(self, style: str) -> bool:
        return style.casefold().strip() in self.skip_styles

    def speaker(self, written: str) -> str | None:
        """The canonical speaker for a name as written; ``None`` for narrator/other."""
        mapped = self.names.get(written.casefold().strip(), written)
        return clean_speaker(mapped)

    def style_speaker(self, style: str) -> str | None:
        mapped = self.styles.get(style.casefold().strip())
        return None if mapped is None else clean_speaker(mapped)


class CharacterNames:
    """The names the extracted character goes by: ``--character`` and ``--alias``, case-insensitive."""

    def __init__(self, name: str, aliases: Iterable[str] = ()) -> None:
        cleaned = clean_speaker(name)
        if cleaned is None:
            raise ExtractError("--character: the name is empty")
        self.name = cleaned
        self._folded = {n.casefold() for n in (name, *aliases, cleaned) if n.strip()}
        self._folded |= {n.casefold().strip() for n in self._folded}

    def __contains__(self, speaker: object) -> bool:
        return isinstance(speaker, str) and speaker.casefold().strip() in self._folded

    def require_speaker(self, speakers: Counter[str], sources: str) -> None:
        """Refuse a name that never speaks, listing who does (and a close spelling, if there is one)."""
        if any(speaker in self for speaker in speakers):
            return
        if not speakers:
            raise ExtractError(
                f"{self.name!r} never speaks in {sources}: no line names its speaker "
                "(use an ASS Name field, 'Name: line' prefixes, or --speaker-map)"
            )
        frequent = ", ".join(f"{name} ({count})" for name, count in speakers.most_common(10))
        close = difflib.get_close_matches(self.name, list(speakers), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExtractError(
            f"{self.name!r} never speaks in {sources}; most frequent speakers: {frequent}{hint}"
        )


def detect_language(texts: Iterable[str]) -> Language:
    """``zh`` when CJK characters make up more than 30% of the letters, else ``en``."""
    cjk = latin = 0
    for text in texts:
        cjk += len(_CJK.findall(text))
        latin += len(_LATIN.findall(text))
    return "zh" if cjk and cjk / (cjk + latin) > 0.3 else "en"
