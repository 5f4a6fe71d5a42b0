"""Cutting a stream of lines into scenes, and writing a scene in the pack's format.

Retrieval puts whole scenes into the prompt, so a scene should be one exchange: lines close in time,
not too many of them. A silence longer than the gap starts a new scene; so does reaching the line or
time cap, which keeps a long uninterrupted dialogue from becoming one prompt-filling scene.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.extract.speakers import CharacterNames
from bot.extract.subtitles import SubtitleLine


@dataclass(slots=True, frozen=True)
class SceneLimits:
    """When one scene ends and the next begins."""

    gap_ms: int = 6000
    max_lines: int = 12
    max_ms: int = 120_000


@dataclass(slots=True)
class SceneDraft:
    """A scene being assembled: its lines, and the video its frames are grabbed from (if any)."""

    lines: list[SubtitleLine] = field(default_factory=list)
    video: Path | None = None
    end_ms: int = 0

    def accepts(self, line: SubtitleLine, limits: SceneLimits) -> bool:
        """Whether ``line`` continues this scene rather than starting the next one."""
        if not self.lines:
            return True
        return (
            line.start_ms - self.end_ms <= limits.gap_ms
            and len(self.lines) < limits.max_lines
            and line.end_ms - self.lines[0].start_ms <= limits.max_ms
        )

    def add(self, line: SubtitleLine) -> None:
        self.lines.append(line)
        self.end_ms = max(self.end_ms, line.end_ms)

    def spoken_by(self, character: CharacterNames) -> list[SubtitleLine]:
        return [line for line in self.lines if line.speaker in character]

    def render(self, character: CharacterNames, narrator: str) -> str:
        """The scene file: one ``Speaker:「line」`` per line, the character under its ``--character`` name."""
        rows = []
        for line in self.lines:
            speaker = character.name if line.speaker in character else line.speaker or narrator
            rows.append(f"{speaker}:「{line.text}」")
        return "\n".join(rows) + "\n"


def group_by_time(
    lines: Iterable[SubtitleLine], limits: SceneLimits, video: Path | None = None
) -> list[SceneDraft]:
    """Time-ordered ``lines`` → scenes, split at silences longer than ``limits.gap_ms`` and at the caps."""
    scenes: list[SceneDraft] = []
    for line in lines:
        if not scenes or not scenes[-1].accepts(line, limits):
            scenes.append(SceneDraft(video=video))
        scenes[-1].add(line)
    return scenes


def split_long(groups: Iterable[Sequence[SubtitleLine]], limits: SceneLimits) -> list[SceneDraft]:
    """Scenes whose breaks the input already marks (a transcript's blank lines), cut at ``max_lines``."""
    scenes: list[SceneDraft] = []
    for group in groups:
        for start in range(0, len(group), limits.max_lines):
            scene = SceneDraft()
            for line in group[start : start + limits.max_lines]:
                scene.add(line)
            scenes.append(scene)
    return scenes
