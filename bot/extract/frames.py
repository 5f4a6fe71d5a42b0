"""Frames out of video with ffmpeg (found and run by :mod:`.media`).

One ffmpeg process per frame, with ``-ss`` before ``-i`` so ffmpeg seeks to the nearest keyframe instead
of decoding the episode from the start; a few processes run at once (frame grabs are I/O and decode
bound, and more than two saturate a small machine). Every call has a timeout, so a damaged file cannot
hang the tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ExtractError
from bot.extract.media import run_ffmpeg
from bot.extract.subtitles import format_time
from bot.ffmpeg import last_line


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
        result = run_ffmpeg(
            [
                "-loglevel", "error", "-ss", f"{at_ms / 1000:.3f}", "-i", str(request.video),
                "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-vf", scale,
                "-q:v", str(settings.jpeg_quality), "-y", str(request.target),
            ],
            settings.timeout_s,
            what,
        )  # fmt: skip
        if result.returncode != 0:
            raise ExtractError(f"{what}: ffmpeg cannot grab a frame ({last_line(result.stderr)})")
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
