"""Grouping subtitle lines into scenes, and finding the character's lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from bot.errors import ExtractError
from bot.extract.subtitles import SubtitleLine


def group_scenes(lines: Sequence[SubtitleLine], *, gap_ms: int, max_lines: int) -> list[list[SubtitleLine]]:
    """Split time-ordered ``lines`` where the silence between two lines exceeds ``gap_ms``.

    A scene is also cut after ``max_lines`` lines, so one long dialogue does not fill a prompt.
    """
    scenes: list[list[SubtitleLine]] = []
    for line in lines:
        if scenes and line.start_ms - scenes[-1][-1].end_ms <= gap_ms and len(scenes[-1]) < max_lines:
            scenes[-1].append(line)
        else:
            scenes.append([line])
    return scenes


class CharacterNames:
    """The names a character goes by in the subtitles (case-insensitive)."""

    def __init__(self, name: str, aliases: Iterable[str] = ()) -> None:
        self.name = name
        self._folded = {n.casefold().strip() for n in (name, *aliases) if n.strip()}

    def __contains__(self, speaker: object) -> bool:
        return isinstance(speaker, str) and speaker.casefold().strip() in self._folded

    def check_speaks(self, lines: Iterable[SubtitleLine], sources: str) -> None:
        """Raise a clear error, naming who does speak, when the character never does."""
        speakers = Counter(line.speaker for line in lines if line.speaker)
        if not any(speaker in self for speaker in speakers):
            common = (
                ", ".join(f"{name} ({count})" for name, count in speakers.most_common(8)) or "nobody is named"
            )
            raise ExtractError(f"{self.name!r} never speaks in {sources}; the speakers found are: {common}")
