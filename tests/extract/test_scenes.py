"""Grouping lines into scenes: silences, the line cap, the time cap."""

from __future__ import annotations

from pathlib import Path

from bot.extract.scenes import SceneLimits, group_by_time, split_long
from bot.extract.speakers import CharacterNames
from bot.extract.subtitles import SubtitleLine


def _line(start_s: float, end_s: float, speaker: str | None = "Pip", text: str = "line") -> SubtitleLine:
    return SubtitleLine(round(start_s * 1000), round(end_s * 1000), speaker, text, Path("ep.srt"))


def _starts(scenes: list[list[SubtitleLine]]) -> list[list[float]]:
    return [[line.start_ms / 1000 for line in scene] for scene in scenes]


def test_a_silence_longer_than_the_gap_starts_a_scene() -> None:
    lines = [_line(1, 2), _line(7.5, 8), _line(14.1, 15), _line(15, 40), _line(45, 46)]
    scenes = group_by_time(lines, SceneLimits(gap_ms=6000))
    assert _starts([scene.lines for scene in scenes]) == [[1, 7.5], [14.1, 15, 45]]


def test_overlapping_lines_measure_the_gap_from_the_latest_end() -> None:
    lines = [_line(0, 10), _line(1, 2), _line(14, 15)]
    assert len(group_by_time(lines, SceneLimits(gap_ms=6000))) == 1


def test_long_dialogues_are_cut_by_the_caps() -> None:
    lines = [_line(second, second + 1) for second in range(30)]
    by_lines = group_by_time(lines, SceneLimits(gap_ms=6000, max_lines=12, max_ms=600_000))
    assert [len(scene.lines) for scene in by_lines] == [12, 12, 6]
    by_time = group_by_time(lines, SceneLimits(gap_ms=6000, max_lines=100, max_ms=10_000))
    assert [len(scene.lines) for scene in by_time] == [10, 10, 10]
    assert [len(scene.lines) for scene in split_long([lines], SceneLimits(max_lines=25))] == [25, 5]


def test_render_uses_the_character_name_and_the_narrator() -> None:
    scene = group_by_time(
        [_line(1, 2, "pip", "Storm!"), _line(2, 3, "KEEPER", "Tie it twice."), _line(3, 4, None, "Wind.")],
        SceneLimits(),
    )[0]
    names = CharacterNames("Orla", ["Keeper"])
    assert scene.render(names, "Narrator") == "pip:「Storm!」\nOrla:「Tie it twice.」\nNarrator:「Wind.」\n"
    assert [line.text for line in scene.spoken_by(names)] == ["Tie it twice."]
