"""Plain transcripts: ``Name: line`` per line, a blank line between scenes, no video."""

from __future__ import annotations

from pathlib import Path

from bot.extract.speakers import SpeakerMap, split_prefix, strip_quotes
from bot.extract.subtitles import SubtitleLine
from bot.extract.textfiles import read_text


def read_transcript(
    path: Path, speakers: SpeakerMap | None = None, encoding: str | None = None
) -> list[list[SubtitleLine]]:
    """The transcript's scenes in order; a line without a ``Name:`` prefix is narration (speaker ``None``)."""
    speakers = speakers or SpeakerMap()
    scenes: list[list[SubtitleLine]] = [[]]
    for number, raw in enumerate(read_text(path, encoding).split("\n"), start=1):
        text = " ".join(raw.split())
        if not text:
            if scenes[-1]:
                scenes.append([])
            continue
        speaker: str | None = None
        if (prefixed := split_prefix(text)) is not None:
            written, text = prefixed
            speaker = speakers.speaker(written)
        else:
            text = strip_quotes(text)
        if text:
            scenes[-1].append(SubtitleLine(0, 0, speaker, text, path, number))
    return [scene for scene in scenes if scene]
