"""``{"image": ..., "text": ...}`` jsonl from another tool: frames already cut, each with its line.

Each object needs ``image`` (a path relative to the jsonl file, or absolute) and ``text`` (the line,
optionally ``Name: line`` / ``Name:「line」``). Optional keys: ``speaker`` (else the text's prefix,
else the extracted character), ``scene`` (consecutive objects with the same value form one scene) and
``start``/``end`` in seconds (scenes are then cut by time gaps, as for subtitles). Without ``scene`` or
``start`` every object is a scene of its own: lines cut by another tool rarely carry their context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.errors import ExtractError
from bot.extract.scenes import SceneDraft, SceneLimits, group_by_time, split_long
from bot.extract.speakers import SpeakerMap, split_prefix, strip_quotes
from bot.extract.subtitles import SubtitleLine
from bot.extract.textfiles import read_text


def jsonl_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.jsonl`` files in the folder ``path``, sorted."""
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise ExtractError(f"{path}: no .jsonl files in this folder")
        return files
    if not path.is_file():
        raise ExtractError(f"{path}: no such file or folder")
    return [path]


def _seconds(entry: dict[str, Any], key: str, where: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ExtractError(f"{where}: {key!r} must be a number of seconds")
    return round(value * 1000)


def _line(entry: Any, file: Path, number: int, speakers: SpeakerMap, character: str) -> SubtitleLine:
    where = f"{file}:{number}"
    if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
        raise ExtractError(f'{where}: expected an object with "image" and "text"')
    raw_text = entry.get("text")
    if not isinstance(raw_text, str) or not raw_text.strip():
        raise ExtractError(f'{where}: "text" must be the non-empty line spoken in the frame')
    image = (file.parent / entry["image"]).resolve()
    if not image.is_file():
        raise ExtractError(f"{where}: image {entry['image']!r} does not exist ({image})")
    text = " ".join(raw_text.split())
    speaker: str | None = character
    if isinstance(entry.get("speaker"), str):
        speaker = speakers.speaker(entry["speaker"])
        text = strip_quotes(text)
    elif (prefixed := split_prefix(text)) is not None:
        written, text = prefixed
        speaker = speakers.speaker(written)
    else:
        text = strip_quotes(text)
    if not text:
        raise ExtractError(f'{where}: "text" has no words after the speaker')
    start = _seconds(entry, "start", where)
    end = _seconds(entry, "end", where)
    return SubtitleLine(start or 0, end or start or 0, speaker, text, file, number, image)


def read_jsonl(
    path: Path, limits: SceneLimits, speakers: SpeakerMap | None = None, *, character: str
) -> tuple[list[SceneDraft], int]:
    """The scenes of every jsonl file at ``path``, and the number of lines read."""
    speakers = speakers or SpeakerMap()
    scenes: list[SceneDraft] = []
    count = 0
    for file in jsonl_files(path):
        entries: list[tuple[SubtitleLine, Any, bool]] = []
        for number, raw in enumerate(read_text(file).split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ExtractError(f"{file}:{number}: invalid JSON: {exc.msg}") from None
            line = _line(entry, file, number, speakers, character)
            entries.append((line, entry.get("scene"), "start" in entry))
        count += len(entries)
        if any(scene is not None for _, scene, _ in entries):
            groups: list[list[SubtitleLine]] = []
            previous: Any = object()
            for line, scene, _ in entries:
                if scene != previous or not groups:
                    groups.append([])
                    previous = scene
                groups[-1].append(line)
            scenes += split_long(groups, limits)
        elif entries and all(timed for _, _, timed in entries):
            ordered = sorted((line for line, _, _ in entries), key=lambda line: line.start_ms)
            scenes += group_by_time(ordered, limits)
        else:
            scenes += split_long([[line] for line, _, _ in entries], limits)
    return scenes, count
