"""Writing the pack: scenes, screenshots, ``images.jsonl`` and ``character.toml``, all or nothing.

Everything is built in a temporary folder beside ``--out`` and validated with the pack loader; only
then does it replace ``--out``. A failure at any step leaves ``--out`` as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.packs import IMAGES_FILE, PACK_FILE, PACK_ID, load_pack
from bot.errors import ExtractError, PackError
from bot.extract.frames import FrameRequest, grab_frames, video_duration
from bot.extract.scenes import CharacterNames, group_scenes
from bot.extract.subtitles import SpeakerMap, SubtitleLine, decode_text, read_subtitles, read_transcript

NARRATOR = {"en": "Narrator", "zh": "旁白"}


@dataclass(slots=True, frozen=True)
class Episode:
    subtitles: Path
    video: Path | None = None


@dataclass(slots=True)
class ExtractOptions:
    """What ``python -m bot extract`` was asked to do."""

    character: str
    out: Path
    episodes: list[Episode] = field(default_factory=list)
    transcripts: list[Path] = field(default_factory=list)
    jsonl: list[Path] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    language: str | None = None
    speaker_map: Path | None = None
    scene_gap_s: float = 6.0
    max_scene_lines: int = 12
    frame_workers: int = 2


@dataclass(slots=True, frozen=True)
class ExtractSummary:
    episodes: int
    scenes: int
    lines: int
    images: int
    seconds: float

    def __str__(self) -> str:
        rate = self.lines / self.seconds if self.seconds else 0.0
        return (
            f"{self.episodes} episode(s), {self.scenes} scenes, {self.lines} lines of the character, "
            f"{self.images} images in {self.seconds:.1f} s ({rate:.1f} lines/s)"
        )


@dataclass(slots=True)
class _Shot:
    """A screenshot to put in the pack: a frame to grab, or an image file to copy."""

    text: str
    video: Path | None = None
    seconds: float = 0.0
    copy_from: Path | None = None


@dataclass(slots=True)
class _Scene:
    lines: list[SubtitleLine]
    video: Path | None = None
    images: dict[int, Path] = field(default_factory=dict)
    """Line position → an image file to copy for it (``--from-jsonl``)."""


def _fmt(ms: float) -> str:
    seconds = ms / 1000
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:05.2f}"


def _episode_scenes(
    episode: Episode, options: ExtractOptions, speakers: SpeakerMap
) -> tuple[list[_Scene], list[SubtitleLine]]:
    lines = read_subtitles(episode.subtitles, speakers)
    if episode.video is not None:
        duration = video_duration(episode.video)
        late = next((line for line in lines if line.start_ms / 1000 > duration), None)
        if late is not None:
            raise ExtractError(
                f"{episode.subtitles}: line {late.index} starts at {_fmt(late.start_ms)} but {episode.video} "
                f"ends at {_fmt(duration * 1000)}; are the subtitles for another video, or out of sync?"
            )
    groups = group_scenes(lines, gap_ms=round(options.scene_gap_s * 1000), max_lines=options.max_scene_lines)
    return [_Scene(group, episode.video) for group in groups], lines


def _jsonl_scenes(path: Path, options: ExtractOptions) -> tuple[list[_Scene], list[SubtitleLine]]:
    """``{image, text}`` lines from another tool: each one a line of the character with its frame."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise ExtractError(f"{path}: no .jsonl files")
    scenes: list[_Scene] = []
    lines: list[SubtitleLine] = []
    for file in files:
        for number, raw in enumerate(decode_text(file).splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                image, text = file.parent / str(entry["image"]), str(entry["text"]).strip()
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ExtractError(f'{file}:{number}: expected {{"image": ..., "text": ...}}') from None
            if not image.is_file():
                raise ExtractError(f"{file}:{number}: image {entry['image']!r} does not exist")
            line = SubtitleLine(number, 0, 0, str(entry.get("speaker") or options.character), text, file)
            lines.append(line)
            if not scenes or len(scenes[-1].lines) >= options.max_scene_lines:
                scenes.append(_Scene([]))
            scenes[-1].images[len(scenes[-1].lines)] = image
            scenes[-1].lines.append(line)
    return scenes, lines


def _language(lines: list[SubtitleLine]) -> str:
    text = "".join(line.text for line in lines)
    han = sum("\u4e00" <= char <= "\u9fff" for char in text)
    return "zh" if text and han / len(text) > 0.2 else "en"


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _character_toml(options: ExtractOptions, language: str, sources: list[str]) -> str:
    aliases = ", ".join(_toml_string(alias) for alias in options.aliases)
    persona = (
        f"You are {options.character}. (Written by the extraction tool: replace this with who "
        f"{options.character} is, how they speak, and what they know.)"
    )
    return "\n".join(
        [
            f"name = {_toml_string(options.character)}",
            f"aliases = [{aliases}]",
            f"language = {_toml_string(language)}",
            f"description = {_toml_string('Extracted from ' + ', '.join(sources))}",
            f"persona = {_toml_string(persona)}",
            "",
        ]
    )


def _replace(build: Path, out: Path) -> None:
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(backup)
        build.rename(out)
        shutil.rmtree(backup)
    else:
        build.rename(out)


def extract_pack(options: ExtractOptions) -> ExtractSummary:
    """Build the pack ``options`` describe and move it into ``options.out``; ExtractError on bad input."""
    started = time.perf_counter()
    if not (options.episodes or options.transcripts or options.jsonl):
        raise ExtractError(
            "nothing to extract: give --video/--subtitles, --subtitles, --transcript or --from-jsonl"
        )
    if not PACK_ID.match(options.out.name):
        raise ExtractError(
            f"--out {options.out}: the folder name is the pack id: lowercase letters, digits, - or _"
        )
    speakers = SpeakerMap.load(options.speaker_map) if options.speaker_map else SpeakerMap()
    names = CharacterNames(options.character, options.aliases)

    scenes: list[_Scene] = []
    every_line: list[SubtitleLine] = []
    for episode in options.episodes:
        found, lines = _episode_scenes(episode, options, speakers)
        scenes += found
        every_line += lines
    for transcript in options.transcripts:
        groups = read_transcript(transcript, speakers)
        scenes += [_Scene(group) for group in groups]
        every_line += [line for group in groups for line in group]
    for path in options.jsonl:
        found, lines = _jsonl_scenes(path, options)
        scenes += found
        every_line += lines
    sources = [str(e.subtitles) for e in options.episodes] + [
        str(p) for p in options.transcripts + options.jsonl
    ]
    names.check_speaks(every_line, ", ".join(sources))
    kept = [scene for scene in scenes if any(line.speaker in names for line in scene.lines)]
    language = options.language or _language([line for line in every_line if line.speaker in names])
    narrator = NARRATOR.get(language, "Narrator")

    options.out.parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=".extract-", dir=options.out.parent))
    try:
        build = workspace / options.out.name
        (build / "scenes").mkdir(parents=True)
        (build / "images").mkdir()
        shots: list[tuple[str, _Shot]] = []
        spoken = 0
        for number, scene in enumerate(kept, start=1):
            scene_file = f"scenes/{number:03d}.txt"
            rows = []
            for position, line in enumerate(scene.lines):
                own = line.speaker in names
                rows.append(f"{options.character if own else (line.speaker or narrator)}:「{line.text}」")
                if not own:
                    continue
                spoken += 1
                if position in scene.images:
                    shots.append((scene_file, _Shot(line.text, copy_from=scene.images[position])))
                elif scene.video is not None:
                    shots.append((scene_file, _Shot(line.text, scene.video, line.midpoint_s)))
            (build / scene_file).write_text("\n".join(rows) + "\n", encoding="utf-8")

        requests: list[FrameRequest] = []
        entries: list[str] = []
        for number, (scene_file, shot) in enumerate(shots, start=1):
            suffix = shot.copy_from.suffix.lower() if shot.copy_from else ".jpg"
            image = f"images/{number:04d}{suffix}"
            if shot.copy_from is not None:
                shutil.copyfile(shot.copy_from, build / image)
            elif shot.video is not None:
                requests.append(FrameRequest(shot.video, shot.seconds, build / image))
            entries.append(
                json.dumps({"image": image, "text": shot.text, "scene": scene_file}, ensure_ascii=False)
            )
        grab_frames(requests, workers=options.frame_workers)
        if entries:
            (build / IMAGES_FILE).write_text("\n".join(entries) + "\n", encoding="utf-8")

        existing = options.out / PACK_FILE
        if existing.is_file():
            shutil.copyfile(existing, build / PACK_FILE)
            for extra in ("avatar.png", "avatar.jpg"):
                if (options.out / extra).is_file():
                    shutil.copyfile(options.out / extra, build / extra)
        else:
            (build / PACK_FILE).write_text(_character_toml(options, language, sources), encoding="utf-8")
        try:
            load_pack(build)
        except PackError as exc:
            raise ExtractError(f"the extracted pack does not validate: {exc}") from exc
        _replace(build, options.out)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return ExtractSummary(
        len(options.episodes), len(kept), spoken, len(entries), time.perf_counter() - started
    )
