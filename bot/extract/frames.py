"""Frames out of video with ffmpeg: the one on ``PATH``, else the static build inside ``imageio-ffmpeg``.

One ffmpeg process per frame, with ``-ss`` before ``-i`` so ffmpeg seeks to the nearest keyframe instead
of decoding the episode from the start; a few processes run at once (frame grabs are I/O and decode
bound, and more than two saturate a small machine). Every call has a timeout, so a damaged file cannot
hang the tool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot.errors import ExtractError, missing_extra
from bot.extract.subtitles import format_time

_DURATION = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #\S+.*?: Video:")


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``ffmpeg`` on ``PATH``, else the one shipped in the ``imageio-ffmpeg`` wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ModuleNotFoundError as exc:
        raise missing_extra(
            ExtractError, "grabbing frames", "ffmpeg on PATH or imageio-ffmpeg", "extract"
        ) from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    meaningful = [line for line in lines if "output file" not in line]
    return (meaningful or lines or ["no output"])[-1]


def _ffmpeg(args: Sequence[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExtractError(f"{what}: ffmpeg took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise ExtractError(f"cannot run ffmpeg ({ffmpeg_exe()}): {exc.strerror or exc}") from None


def probe_duration_ms(video: Path, timeout_s: float = 30) -> int | None:
    """The video's length in milliseconds (``None`` if the container does not say).

    A file ffmpeg cannot open, or one without a video stream, is an :class:`ExtractError` naming it.
    """
    if not video.is_file():
        raise ExtractError(f"{video}: no such video file")
    result = _ffmpeg(["-i", str(video)], timeout_s, str(video))
    match = _DURATION.search(result.stderr)
    if "Error opening input" in result.stderr or not _VIDEO_STREAM.search(result.stderr):
        opened = "Input #0" in result.stderr and "Error opening input" not in result.stderr
        reason = "it has no video stream" if opened else _last_line(result.stderr)
        raise ExtractError(f"{video}: ffmpeg cannot read this video ({reason})")
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


@dataclass(slots=True, frozen=True)
class FrameRequest:
    """One frame to grab: ``at_ms`` into ``video``, written as a JPEG to ``target``."""

    video: Path
    at_ms: int
    target: Path


@dataclass(slots=True, frozen=True)
class FrameSettings:
    """How frames are grabbed: size, quality, parallelism and the per-call timeout."""

    max_width: int = 640
    jpeg_quality: int = 5
    """ffmpeg's ``-q:v`` for MJPEG: 2 (best) … 31 (worst)."""
    workers: int = 2
    timeout_s: float = 60


def grab_frame(request: FrameRequest, settings: FrameSettings | None = None) -> None:
    """Write the frame at ``request.at_ms`` (or the last one before it, near the end of the video)."""
    settings = settings or FrameSettings()
    scale = f"scale='min({settings.max_width},iw)':-2:out_range=full,format=yuvj420p"
    what = f"{request.video} at {format_time(request.at_ms)}"
    # NOTE: seeking to the very end yields no frame (exit 0, no file), so step back a little and retry.
    for at_ms in dict.fromkeys((request.at_ms, max(request.at_ms - 500, 0), max(request.at_ms - 2000, 0))):
        result = _ffmpeg(
            [
                "-loglevel", "error", "-ss", f"{at_ms / 1000:.3f}", "-i", str(request.video),
                "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-vf", scale,
                "-q:v", str(settings.jpeg_quality), "-y", str(request.target),
            ],
            settings.timeout_s,
            what,
        )  # fmt: skip
        if result.returncode != 0:
            raise ExtractError(f"{what}: ffmpeg cannot grab a frame ({_last_line(result.stderr)})")
        if request.target.is_file() and request.target.stat().st_size > 0:
            return
    raise ExtractError(f"{what}: no frame there (is the video shorter than its subtitles?)")


def grab_frames(requests: Sequence[FrameRequest], settings: FrameSettings | None = None) -> None:
    """Grab every frame, ``settings.workers`` ffmpeg processes at a time; the first failure stops the rest."""
    settings = settings or FrameSettings()
    if not requests:
        return
    with ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="ffmpeg") as pool:
        futures = [pool.submit(grab_frame, request, settings) for request in requests]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            error = future.exception() if future in done else None
            if error is not None:
                raise error
