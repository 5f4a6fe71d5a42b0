"""Reading subtitles (SRT, ASS/SSA) and plain transcripts into speaker-attributed lines."""

from __future__ import annotations

import codecs
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pysubs2
from charset_normalizer import from_bytes

from bot.errors import ExtractError

_PREFIX = re.compile(r"^\s*(?P<speaker>[^:：「」\n]{1,24}?)\s*[:：]\s*(?P<text>\S.*)$", re.S)
_SPEAKER_UNSAFE = re.compile(r"[:：「」\n]+")


@dataclass(slots=True, frozen=True)
class SubtitleLine:
    """One spoken line; ``speaker`` is ``None`` when nobody could be named (narration, signs)."""

    index: int
    start_ms: int
    end_ms: int
    speaker: str | None
    text: str
    source: Path

    @property
    def midpoint_s(self) -> float:
        return (self.start_ms + self.end_ms) / 2000


@dataclass(slots=True)
class SpeakerMap:
    """``--speaker-map``: who speaks, when the subtitles do not say it in the ``Name`` field.

    A TOML or JSON file with two optional tables: ``styles`` maps an ASS style name to a speaker,
    ``names`` maps a name as written (ASS ``Name`` or a ``Name:`` prefix) to the speaker's canonical
    name::

        [styles]
        "Keeper-Main" = "Orla"
        [names]
        "O." = "Orla"
    """

    styles: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SpeakerMap:
        text = decode_text(path)
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ExtractError(f"{path}: not a valid speaker map: {exc}") from None
        unknown = set(data) - {"styles", "names"}
        if unknown:
            raise ExtractError(f"{path}: unknown table {sorted(unknown)[0]!r} (use 'styles' and 'names')")
        return cls(
            {str(k): str(v) for k, v in data.get("styles", {}).items()},
            {str(k): str(v) for k, v in data.get("names", {}).items()},
        )

    def canonical(self, name: str) -> str:
        return self.names.get(name, name)


def decode_text(path: Path) -> str:
    """The text of ``path`` in whatever encoding it is (UTF-8/16 with or without BOM, GBK, Big5...)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise ExtractError(f"{path}: cannot tell the text encoding; save the file as UTF-8")
    return str(best)


def speaker_name(raw: str) -> str:
    return _SPEAKER_UNSAFE.sub(" ", raw).strip()


def read_subtitles(path: Path, speakers: SpeakerMap | None = None) -> list[SubtitleLine]:
    """The lines of an SRT/ASS/SSA file, in time order, with speakers where they can be named.

    ``index`` is the line's position in the file (the SRT counter, the n-th ASS ``Dialogue``).

    The speaker is the ASS ``Name`` field, else a ``Name:`` / ``Name：`` prefix of the text, else what
    ``speakers`` maps the line's style to; otherwise ``None``.
    """
    speakers = speakers or SpeakerMap()
    text = decode_text(path)
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except Exception as exc:  # pysubs2 raises several unrelated types for malformed files
        raise ExtractError(f"{path}: not a subtitle file pysubs2 can read ({exc})") from None
    lines: list[SubtitleLine] = []
    for number, event in enumerate(subs.events, start=1):
        if event.is_comment:
            continue
        body = " ".join(event.plaintext.split())
        if not body:
            continue
        speaker: str | None = event.name.strip() or None
        if speaker is None and (match := _PREFIX.match(body)) is not None:
            speaker, body = match["speaker"], match["text"].strip()
        if speaker is None:
            speaker = speakers.styles.get(event.style)
        if speaker is not None:
            speaker = speaker_name(speakers.canonical(speaker)) or None
        lines.append(SubtitleLine(number, event.start, event.end, speaker, body, path))
    if not lines:
        raise ExtractError(f"{path}: no subtitle lines found")
    return sorted(lines, key=lambda line: line.start_ms)


def read_transcript(path: Path, speakers: SpeakerMap | None = None) -> list[list[SubtitleLine]]:
    """A plain transcript: ``Name: line`` per line, a blank line between scenes. Returns the scenes."""
    speakers = speakers or SpeakerMap()
    scenes: list[list[SubtitleLine]] = [[]]
    for number, raw in enumerate(decode_text(path).splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            if scenes[-1]:
                scenes.append([])
            continue
        match = _PREFIX.match(stripped)
        if match is None:
            scenes[-1].append(SubtitleLine(number, 0, 0, None, stripped, path))
            continue
        speaker = speaker_name(speakers.canonical(match["speaker"]))
        scenes[-1].append(SubtitleLine(number, 0, 0, speaker or None, match["text"].strip(), path))
    return [scene for scene in scenes if scene]
