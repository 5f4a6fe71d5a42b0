"""Frames from video with ffmpeg: the system's, or the static build shipped by ``imageio-ffmpeg``."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ExtractError

FFMPEG_TIMEOUT_S = 60
_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")


def ffmpeg_exe() -> str:
    """``ffmpeg`` from ``PATH``, else the binary inside the ``imageio-ffmpeg`` wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExtractError(f"ffmpeg took longer than {FFMPEG_TIMEOUT_S} s on {args[-1]}") from None


def video_duration(video: Path) -> float:
    """The video's length in seconds; a clear error when ffmpeg cannot read it."""
    if not video.is_file():
        raise ExtractError(f"{video}: no such video file")
    result = _run(["-i", str(video)])
    match = _DURATION.search(result.stderr)
    if match is None or "Invalid data found" in result.stderr:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        raise ExtractError(f"{video}: ffmpeg cannot read this video ({last})")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(slots=True, frozen=True)
class FrameRequest:
    video: Path
    seconds: float
    target: Path


def grab_frame(request: FrameRequest, *, max_width: int = 640) -> None:
    """Write the frame at ``request.seconds`` as a JPEG no wider than ``max_width``."""
    result = _run(
        [
            "-ss", f"{request.seconds:.3f}", "-i", str(request.video), "-frames:v", "1",
            "-vf", f"scale='min({max_width},iw)':-2", "-q:v", "5", "-y", str(request.target),
        ]
    )  # fmt: skip
    if result.returncode != 0 or not request.target.is_file():
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        raise ExtractError(f"{request.video}: no frame at {request.seconds:.2f} s ({last})")


def grab_frames(requests: list[FrameRequest], *, workers: int = 2) -> None:
    """Grab every frame, ``workers`` ffmpeg processes at a time."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(grab_frame, request) for request in requests]:
            future.result()
