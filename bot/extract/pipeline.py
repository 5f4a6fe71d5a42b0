"""``extract_pack``: inputs → lines → scenes → frames and voices → a validated pack, with a summary.

Every input is read and checked (files exist, subtitles decode and fit their video, the character speaks)
before anything is written, so the common mistakes fail in a second with one clear line; only then are
scenes written, frames grabbed and voice lines cut, inside a :class:`~bot.extract.writer.PackStage`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.packs import IMAGES_FILE, PACK_FILE
from bot.errors import ExtractError
from bot.extract.frames import FrameRequest, FrameSettings, grab_frames
from bot.extract.jsonl import jsonl_files, read_jsonl
from bot.extract.media import MediaInfo, probe_video
from bot.extract.scenes import SceneDraft, SceneLimits, group_by_time, split_long
from bot.extract.speakers import NARRATOR, CharacterNames, Language, SpeakerMap, detect_language
from bot.extract.subtitles import SubtitleLine, format_time, read_subtitles
from bot.extract.transcripts import read_transcript
from bot.extract.voices import VoiceCutter, VoiceFormat, VoiceReport, VoiceSettings
from bot.extract.writer import PackStage, character_toml


@dataclass(slots=True, frozen=True)
class Episode:
    """One episode: its subtitles and, when frames are wanted, its video."""

    subtitles: Path
    video: Path | None = None


@dataclass(slots=True)
class ExtractOptions:
    """What to extract, and into which pack (the fields mirror ``python -m bot extract``'s flags)."""

    character: str
    out: Path
    aliases: list[str] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    transcripts: list[Path] = field(default_factory=list)
    jsonl: list[Path] = field(default_factory=list)
    language: Language | None = None
    """``None``: detected from the lines (share of CJK characters)."""
    narrator: str | None = None
    """The speaker written for unattributed lines; ``None``: ``Narrator`` / ``旁白`` by language."""
    speaker_map: Path | None = None
    encoding: str | None = None
    """Force the text encoding of subtitles and transcripts instead of detecting it."""
    limits: SceneLimits = field(default_factory=SceneLimits)
    frames: FrameSettings = field(default_factory=FrameSettings)
    """Also the parallelism and per-call timeout of the voice cuts."""
    voices: bool = True
    """Cut the character's lines out of the video's sound into ``voices/`` (:mod:`.voices`)."""
    voice_format: VoiceFormat = "opus"
    """``opus``: Opus in Ogg, ``.ogg``; ``mp3``: ``.mp3``."""


@dataclass(slots=True)
class ExtractSummary:
    """What one run did, for the printed summary and for tests."""

    out: Path
    character: str
    created: bool
    language: Language
    episodes: int
    transcripts: int
    jsonl: int
    lines: int
    speakers: Counter[str]
    character_lines: int
    scenes_found: int
    scenes_kept: int
    images: int
    frames_s: float
    voices: VoiceReport | None
    """``None``: voices were not wanted (``--no-voices``)."""
    elapsed_s: float
    pack_scenes: int
    pack_screenshots: int
    pack_voices: int

    @property
    def lines_per_s(self) -> float:
        """Input lines processed per second of the whole run (reading, frames, writing, validating)."""
        return self.lines / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def render(self) -> str:
        """The summary ``python -m bot extract`` prints."""
        others = ", ".join(
            f"{name} {count}" for name, count in self.speakers.most_common(6) if name != self.character
        )
        inputs = [
            f"{count} {label}"
            for count, label in (
                (self.episodes, "episode(s)"),
                (self.transcripts, "transcript(s)"),
                (self.jsonl, "jsonl source(s)"),
            )
            if count
        ]
        return "\n".join(
            [
                f"{'created' if self.created else 'updated'} {self.out} "
                f"({self.character}, language {self.language})",
                f"  inputs     {', '.join(inputs)}",
                f"  lines      {self.lines} read, {self.character_lines} by {self.character}"
                + (f" (others: {others})" if others else ""),
                f"  scenes     {self.scenes_kept} kept of {self.scenes_found} (those where "
                f"{self.character} speaks)",
                f"  images     {self.images}"
                + (f" ({self.frames_s:.2f} s in ffmpeg)" if self.images else ""),
                f"  voices     {self.voices.render() if self.voices is not None else 'off (--no-voices)'}",
                f"  elapsed    {self.elapsed_s:.2f} s ({self.lines_per_s:.1f} lines/s)",
                f"  validated  {self.pack_scenes} scenes, {self.pack_screenshots} screenshots, "
                f"{self.pack_voices} voice clips load as a pack",
            ]
        )


def _require_files(options: ExtractOptions) -> None:
    """Fail on a missing input before any work is done."""
    if not (options.episodes or options.transcripts or options.jsonl):
        raise ExtractError(
            "nothing to extract: give --video with --subtitles (or --episode VIDEO SUBS), --subtitles, "
            "--transcript or --from-jsonl"
        )
    paths: list[tuple[str, Path]] = []
    for episode in options.episodes:
        paths.append(("subtitles", episode.subtitles))
        if episode.video is not None:
            paths.append(("video", episode.video))
    paths += [("transcript", path) for path in options.transcripts]
    if options.speaker_map is not None:
        paths.append(("speaker map", options.speaker_map))
    for label, path in paths:
        if not path.is_file():
            raise ExtractError(f"{path}: no such {label} file")
    for path in options.jsonl:
        jsonl_files(path)


def _check_sync(lines: list[SubtitleLine], video: Path, duration_ms: int) -> None:
    late = next((line for line in lines if line.start_ms >= duration_ms), None)
    if late is not None:
        raise ExtractError(
            f"{late.where}: the line starts at {format_time(late.start_ms)}, after the end of {video} "
            f"({format_time(duration_ms)}): are these the subtitles of another episode, or out of sync?"
        )


def _unify_spellings(lines: list[SubtitleLine]) -> None:
    """``ORLA`` and ``Orla`` are one speaker: every line gets the spelling seen first."""
    first: dict[str, str] = {}
    for line in lines:
        if line.speaker is not None:
            line.speaker = first.setdefault(line.speaker.casefold(), line.speaker)


def _frame_time(line: SubtitleLine, duration_ms: int | None) -> int:
    at = line.midpoint_ms
    return at if duration_ms is None else max(0, min(at, duration_ms - 100))


def extract_pack(options: ExtractOptions) -> ExtractSummary:
    """Extract ``options.character`` into the pack ``options.out``; :class:`ExtractError` on bad input.

    A new pack gets a ``character.toml`` with a placeholder persona; an existing pack keeps its
    ``character.toml`` and other files, and only its scenes, screenshots and voice clips are replaced.
    """
    started = time.perf_counter()
    character = CharacterNames(options.character, options.aliases)
    stage = PackStage(options.out)
    _require_files(options)
    speakers = SpeakerMap.load(options.speaker_map) if options.speaker_map else SpeakerMap()

    scenes: list[SceneDraft] = []
    lines: list[SubtitleLine] = []
    media: dict[Path, MediaInfo] = {}
    for episode in options.episodes:
        found = read_subtitles(episode.subtitles, speakers, options.encoding)
        if episode.video is not None:
            media[episode.video] = probe_video(episode.video, options.frames.timeout_s)
            if (duration := media[episode.video].duration_ms) is not None:
                _check_sync(found, episode.video, duration)
        scenes += group_by_time(found, options.limits, episode.video)
        lines += found
    for transcript in options.transcripts:
        groups = read_transcript(transcript, speakers, options.encoding)
        scenes += split_long(groups, options.limits)
        lines += [line for group in groups for line in group]
    for path in options.jsonl:
        drafts, _ = read_jsonl(path, options.limits, speakers, character=character.name)
        scenes += drafts
        lines += [line for draft in drafts for line in draft.lines]

    _unify_spellings(lines)
    named = Counter(line.speaker for line in lines if line.speaker is not None)
    inputs = [*(episode.subtitles for episode in options.episodes), *options.transcripts, *options.jsonl]
    sources = ", ".join(str(path) for path in inputs)
    character.require_speaker(named, sources)
    language = options.language or stage.language() or detect_language(line.text for line in lines)
    narrator = options.narrator or NARRATOR[language]
    speakers_count: Counter[str] = Counter()
    for line in lines:
        speakers_count[character.name if line.speaker in character else line.speaker or narrator] += 1
    kept = [scene for scene in scenes if scene.spoken_by(character)]

    with stage:
        width = max(3, len(str(len(kept))))
        spoken = [line for scene in kept for line in scene.spoken_by(character)]
        image_width = max(4, len(str(len(spoken))))
        requests: list[FrameRequest] = []
        entries: list[str] = []
        voice_settings = VoiceSettings(
            options.voice_format, workers=options.frames.workers, timeout_s=options.frames.timeout_s
        )
        voices = VoiceCutter(stage.root, voice_settings)
        for number, scene in enumerate(kept, start=1):
            scene_id = f"{number:0{width}d}"
            scene_file = f"scenes/{scene_id}.txt"
            (stage.root / scene_file).write_text(scene.render(character, narrator), encoding="utf-8")
            for line in scene.spoken_by(character):
                if line.image is None and scene.video is None:
                    continue
                name = f"{len(entries) + 1:0{image_width}d}"
                suffix = line.image.suffix.lower() if line.image is not None else ".jpg"
                image = f"images/{name}{suffix}"
                if line.image is not None:
                    shutil.copyfile(line.image, stage.root / image)
                elif scene.video is not None:
                    at_ms = _frame_time(line, media[scene.video].duration_ms)
                    requests.append(FrameRequest(scene.video, at_ms, stage.root / image))
                    if options.voices:
                        voices.add(line, scene.video, media[scene.video], name, scene_id)
                entry = {"image": image, "text": line.text, "scene": scene_file}
                entries.append(json.dumps(entry, ensure_ascii=False))
        frames_started = time.perf_counter()
        grab_frames(requests, options.frames)
        frames_s = time.perf_counter() - frames_started
        voice_report = voices.cut() if options.voices else None
        if entries:
            (stage.root / IMAGES_FILE).write_text("\n".join(entries) + "\n", encoding="utf-8")
        if not stage.existing:
            names = ", ".join(dict.fromkeys(path.name for path in inputs))
            description = f"{character.name}, extracted from {names}"[:200]
            toml = character_toml(character.name, options.aliases, language, description)
            (stage.root / PACK_FILE).write_text(toml, encoding="utf-8")
        pack = stage.commit()

    return ExtractSummary(
        out=options.out,
        character=character.name,
        created=not stage.existing,
        language=language,
        episodes=len(options.episodes),
        transcripts=len(options.transcripts),
        jsonl=len(options.jsonl),
        lines=len(lines),
        speakers=speakers_count,
        character_lines=len(spoken),
        scenes_found=len(scenes),
        scenes_kept=len(kept),
        images=len(entries),
        frames_s=frames_s,
        voices=voice_report,
        elapsed_s=time.perf_counter() - started,
        pack_scenes=len(pack.scenes),
        pack_screenshots=len(pack.screenshots),
        pack_voices=len(pack.voices),
    )
