"""The character's own voice lines, cut out of the video with ffmpeg.

One ffmpeg call per line, from the subtitle line's start to its end: ``-ss`` before ``-i`` (ffmpeg seeks
to the keyframe before the line and decodes from there to the exact sample, so the cut is where the
subtitle says), the first audio track only, one channel, loudness-normalised with ``loudnorm`` (EBU R128,
so lines from a quiet and a loud episode play at one level), encoded as Opus in Ogg (small, and what chat
apps' voice messages are) or MP3. A few calls run at once, each with a timeout, as for frames.

A voice line is an extra to a pack, not part of it: a cut that fails (a damaged stretch of the file, a
timeout) is skipped with a warning and counted, and the pack is built without it. Lines too short to be
worth a voice message or too long to be one line are skipped too.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.engine.packs import VOICES_FILE
from bot.errors import ExtractError
from bot.extract.media import MediaInfo, run_ffmpeg
from bot.extract.subtitles import SubtitleLine, format_time
from bot.ffmpeg import last_line

log = logging.getLogger(__name__)

VoiceFormat = Literal["opus", "mp3"]
VOICES_DIR = "voices"

_ENCODERS: dict[VoiceFormat, tuple[str, tuple[str, ...]]] = {
    "opus": (".ogg", ("-c:a", "libopus", "-b:a", "32k")),
    "mp3": (".mp3", ("-c:a", "libmp3lame", "-b:a", "64k")),
}
_EMPTY_OUTPUT = "Output file is empty"
_MONO = "aformat=channel_layouts=mono"
"""Down-mixed before ``loudnorm``, which measures each channel at 192 kHz: a third less time per cut."""


@dataclass(slots=True, frozen=True)
class VoiceSettings:
    """How voice lines are cut: format, loudness, which lines, parallelism and the per-call timeout."""

    format: VoiceFormat = "opus"
    loudness: str = "loudnorm=I=-16:TP=-1.5:LRA=11"
    """The ffmpeg audio filter that evens out loudness (-16 LUFS, peaks under -1.5 dBTP)."""
    min_ms: int = 300
    """Shorter lines (a gasp, a name) are skipped: too little to be worth a voice message."""
    max_ms: int = 15_000
    """Longer lines are skipped: a subtitle that long is usually a song or a speech, not a line."""
    workers: int = 2
    timeout_s: float = 60

    @property
    def suffix(self) -> str:
        return _ENCODERS[self.format][0]


@dataclass(slots=True, frozen=True)
class VoiceRequest:
    """One clip to cut: ``start_ms`` to ``end_ms`` of ``video``, written to ``target``."""

    video: Path
    start_ms: int
    end_ms: int
    target: Path


def cut_voice(request: VoiceRequest, settings: VoiceSettings | None = None) -> None:
    """Write the clip; :class:`ExtractError` (and no file left behind) when ffmpeg cannot make it."""
    settings = settings or VoiceSettings()
    what = f"{request.video} at {format_time(request.start_ms)}"
    length_s = (request.end_ms - request.start_ms) / 1000
    try:
        result = run_ffmpeg(
            [
                "-loglevel", "warning", "-ss", f"{request.start_ms / 1000:.3f}", "-i", str(request.video),
                "-t", f"{length_s:.3f}", "-map", "0:a:0", "-vn", "-sn", "-dn",
                "-af", f"{_MONO},{settings.loudness}", "-ar", "48000", *_ENCODERS[settings.format][1],
                "-map_metadata", "-1", "-map_chapters", "-1", "-y", str(request.target),
            ],
            settings.timeout_s,
            what,
        )  # fmt: skip
        if result.returncode != 0:
            raise ExtractError(f"{what}: ffmpeg cannot cut the line ({last_line(result.stderr)})")
        if _EMPTY_OUTPUT in result.stderr or not request.target.is_file():
            raise ExtractError(f"{what}: no sound there (is the audio track shorter than the video?)")
    except ExtractError:
        request.target.unlink(missing_ok=True)
        raise


def cut_voices(requests: Sequence[VoiceRequest], settings: VoiceSettings | None = None) -> list[str | None]:
    """Cut every clip, ``settings.workers`` at a time; for each request ``None`` or why it failed.

    A failure is logged as a warning and does not stop the other cuts.
    """
    settings = settings or VoiceSettings()

    def attempt(request: VoiceRequest) -> str | None:
        try:
            cut_voice(request, settings)
        except ExtractError as exc:
            log.warning("voice line skipped: %s", exc)
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="ffmpeg") as pool:
        return list(pool.map(attempt, requests))


@dataclass(slots=True)
class VoiceReport:
    """What became of the character's lines as voice clips, for the extraction summary."""

    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """How many lines were left without a clip, by reason (``"shorter than 0.3 s"``, ``"failed"``…)."""
    silent_videos: list[Path] = field(default_factory=list)
    """Videos with no audio stream: none of their lines has a clip."""
    first_failure: str = ""
    seconds: float = 0.0
    """Time spent in ffmpeg cutting clips."""

    def render(self) -> str:
        """The part of the summary after ``voices``."""
        text = str(self.written) + (f" ({self.seconds:.2f} s in ffmpeg)" if self.written else "")
        notes = []
        if self.skipped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())
            notes.append(f"skipped {reasons}")
        if self.first_failure:
            notes.append(f"first failure: {self.first_failure}")
        if self.silent_videos:
            names = ", ".join(dict.fromkeys(video.name for video in self.silent_videos))
            them = "it" if len(self.silent_videos) == 1 else "them"
            notes.append(f"no audio stream in {names}: no voices from {them}")
        return "; ".join([text, *notes])


class VoiceCutter:
    """The voice clips of one extraction: planned line by line as the scenes are written, then cut.

    Clips go to ``voices/`` of the pack being built, named like the line's screenshot
    (``images/0003.jpg`` → ``voices/0003.ogg``), and are listed in ``voices.jsonl`` with the line and
    the id of its scene.
    """

    def __init__(self, root: Path, settings: VoiceSettings) -> None:
        self.root = root
        self.settings = settings
        self.report = VoiceReport()
        self._planned: list[tuple[VoiceRequest, dict[str, str]]] = []

    def add(self, line: SubtitleLine, video: Path, media: MediaInfo, name: str, scene: str) -> None:
        """Plan the clip of ``line`` as ``voices/<name>``, or count why it gets none."""
        if not media.has_audio:
            if video not in self.report.silent_videos:
                self.report.silent_videos.append(video)
            return
        end_ms = line.end_ms if media.duration_ms is None else min(line.end_ms, media.duration_ms)
        length_ms = end_ms - line.start_ms
        if length_ms < self.settings.min_ms:
            self.report.skipped[f"shorter than {self.settings.min_ms / 1000:g} s"] += 1
            return
        if length_ms > self.settings.max_ms:
            self.report.skipped[f"longer than {self.settings.max_ms / 1000:g} s"] += 1
            return
        audio = f"{VOICES_DIR}/{name}{self.settings.suffix}"
        request = VoiceRequest(video, line.start_ms, end_ms, self.root / audio)
        self._planned.append((request, {"audio": audio, "text": line.text, "scene": scene}))

    def cut(self) -> VoiceReport:
        """Cut the planned clips and write ``voices.jsonl`` listing those that were made."""
        if not self._planned:
            return self.report
        (self.root / VOICES_DIR).mkdir(exist_ok=True)
        started = time.perf_counter()
        failures = cut_voices([request for request, _ in self._planned], self.settings)
        self.report.seconds = time.perf_counter() - started
        rows = []
        for (_, entry), failure in zip(self._planned, failures, strict=True):
            if failure is None:
                rows.append(json.dumps(entry, ensure_ascii=False))
            else:
                self.report.skipped["failed"] += 1
                self.report.first_failure = self.report.first_failure or failure
        self.report.written = len(rows)
        if rows:
            (self.root / VOICES_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
        elif not any((self.root / VOICES_DIR).iterdir()):
            (self.root / VOICES_DIR).rmdir()
        return self.report
