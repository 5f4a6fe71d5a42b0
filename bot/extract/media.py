"""ffmpeg for extraction: finding it, running it with a timeout, and probing what a video holds.

Frames (:mod:`.frames`) and voice lines (:mod:`.voices`) both run ffmpeg through :func:`run_ffmpeg`, so
every call has a timeout (a damaged file cannot hang the tool) and every failure is an
:class:`~bot.errors.ExtractError` in words. The probe reads ffmpeg's own description of the input
(``ffmpeg -i``): the imageio-ffmpeg wheel ships no ffprobe.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot import ffmpeg
from bot.errors import ExtractError, missing_extra
from bot.ffmpeg import find_ffmpeg, last_line

_DURATION = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #\S+.*?: Video:")
_AUDIO_STREAM = re.compile(r"Stream #\S+.*?: Audio:")


def ffmpeg_exe() -> str:
    """The ffmpeg binary (:func:`bot.ffmpeg.find_ffmpeg`); :class:`ExtractError` when there is none."""
    found = find_ffmpeg()
    if found is None:
        raise missing_extra(ExtractError, "grabbing frames", "ffmpeg on PATH or imageio-ffmpeg", "extract")
    return found


def run_ffmpeg(args: Sequence[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with ``args`` (:func:`bot.ffmpeg.run_ffmpeg`), its output as text; a timeout or a
    binary that cannot start is an :class:`ExtractError`. A non-zero exit is returned, not raised:
    the caller knows what the call was for and says so."""
    ffmpeg_exe()  # without one, say what extraction needs
    done = ffmpeg.run_ffmpeg(args, timeout_s=timeout_s, what=what, error=ExtractError, extra="extract")
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


@dataclass(slots=True, frozen=True)
class MediaInfo:
    """What :func:`probe_video` learnt about a video."""

    duration_ms: int | None
    """``None`` when the container does not say."""
    has_audio: bool


def probe_video(video: Path, timeout_s: float = 30) -> MediaInfo:
    """The video's length and whether it has sound.

    A file ffmpeg cannot open, or one without a video stream, is an :class:`ExtractError` naming it.
    """
    if not video.is_file():
        raise ExtractError(f"{video}: no such video file")
    result = run_ffmpeg(["-i", str(video)], timeout_s, str(video))
    if "Error opening input" in result.stderr or not _VIDEO_STREAM.search(result.stderr):
        opened = "Input #0" in result.stderr and "Error opening input" not in result.stderr
        reason = "it has no video stream" if opened else last_line(result.stderr)
        raise ExtractError(f"{video}: ffmpeg cannot read this video ({reason})")
    has_audio = _AUDIO_STREAM.search(result.stderr) is not None
    match = _DURATION.search(result.stderr)
    if match is None:
        return MediaInfo(None, has_audio)
    hours, minutes, seconds = match.groups()
    return MediaInfo(round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000), has_audio)
