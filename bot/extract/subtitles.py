"""Subtitle files (SRT, ASS/SSA and the other formats pysubs2 reads) → speaker-attributed lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ExtractError, missing_extra
from bot.extract.speakers import SpeakerMap, split_prefix, strip_quotes
from bot.extract.textfiles import read_text

if TYPE_CHECKING:
    import pysubs2

_ASS_EVENT = re.compile(r"^\s*(Dialogue|Comment)\s*:", re.IGNORECASE)
_SRT_TIMING = re.compile(r"-->")


@dataclass(slots=True)
class SubtitleLine:
    """One spoken (or shown) line with its time span and, when it can be named, its speaker.

    ``speaker`` is ``None`` for narration, signs and unknown voices. ``line`` is the line number in
    the source file where that is known, so errors point at it; ``image`` is a frame another tool already
    cut for this line (``--from-jsonl``).
    """

    start_ms: int
    end_ms: int
    speaker: str | None
    text: str
    source: Path
    line: int | None = None
    image: Path | None = None

    @property
    def midpoint_ms(self) -> int:
        return (self.start_ms + self.end_ms) // 2

    @property
    def where(self) -> str:
        """``file:line`` for messages."""
        return f"{self.source}:{self.line}" if self.line is not None else str(self.source)


def format_time(ms: int) -> str:
    """``h:mm:ss.mmm``, as subtitle editors show times."""
    seconds, millis = divmod(max(ms, 0), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _event_lines(text: str, format_: str, count: int) -> list[int | None]:
    """The file line number of each event, when the events can be matched to the file's lines."""
    pattern = _ASS_EVENT if format_ in {"ass", "ssa"} else _SRT_TIMING if format_ == "srt" else None
    if pattern is None:
        return [None] * count
    numbers: list[int | None] = [n for n, raw in enumerate(text.split("\n"), start=1) if pattern.search(raw)]
    return numbers if len(numbers) == count else [None] * count


def plain_text(event: pysubs2.SSAEvent) -> str:
    """The visible text: override tags (``{\\i1}``…) removed, ``\\N``/``\\h`` and space runs → one space."""
    return " ".join(event.plaintext.replace("\\h", " ").split())


def read_subtitles(
    path: Path, speakers: SpeakerMap | None = None, encoding: str | None = None
) -> list[SubtitleLine]:
    """The lines of a subtitle file in time order, each with its speaker where one can be named.

    The speaker is, in this order: the ASS ``Name`` (actor) field; a ``Name:`` / ``Name：`` prefix of
    the text (removed from the line); the speaker ``speakers`` gives the line's ASS style; otherwise
    ``None`` (narrator/other). Names pass through ``speakers.names``. Comments, drawings, lines of skipped
    styles, empty lines and exact duplicates (the same text shown twice in two layers) are dropped.
    """
    try:
        import pysubs2
    except ModuleNotFoundError as exc:
        raise missing_extra(ExtractError, "reading subtitle files", "pysubs2", "extract") from exc
    speakers = speakers or SpeakerMap()
    text = read_text(path, encoding)
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except pysubs2.exceptions.FormatAutodetectionError:
        raise ExtractError(f"{path}: not a subtitle file (SRT, ASS/SSA, ...) that pysubs2 can read") from None
    except Exception as exc:  # pysubs2 raises plain ValueError/KeyError on malformed files
        raise ExtractError(f"{path}: malformed subtitles: {exc}") from None
    numbers = _event_lines(text, subs.format or "", len(subs.events))
    lines: list[SubtitleLine] = []
    seen: set[tuple[int, int, str]] = set()
    for event, number in zip(subs.events, numbers, strict=True):
        if event.is_comment or event.is_drawing or speakers.skips(event.style):
            continue
        body = strip_quotes(plain_text(event))
        if not body or (event.start, event.end, body) in seen:
            continue
        seen.add((event.start, event.end, body))
        speaker: str | None = None
        if event.name.strip():
            speaker = speakers.speaker(event.name)
        elif (prefixed := split_prefix(body)) is not None:
            written, body = prefixed
            speaker = speakers.speaker(written)
        else:
            speaker = speakers.style_speaker(event.style)
        lines.append(SubtitleLine(event.start, max(event.end, event.start), speaker, body, path, number))
    if not lines:
        raise ExtractError(f"{path}: no subtitle lines with text")
    lines.sort(key=lambda line: line.start_ms)
    return lines
