"""ffmpeg: finding it (the one on ``PATH``, else the static build inside the ``imageio-ffmpeg`` wheel)
and running it with a timeout.

Extraction (frames and voice lines out of video) and voice (encoding speech for chats) both run it;
each raises its own error class, naming its own extra, so :func:`run_ffmpeg` takes the class.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from typing import TypeVar

from bot.errors import BotError, missing_extra

E = TypeVar("E", bound=BotError)


@cache
def find_ffmpeg() -> str | None:
    """The ffmpeg binary to run, or ``None`` when neither ``PATH`` nor ``imageio-ffmpeg`` has one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ModuleNotFoundError:
        return None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    what: str,
    error: type[E],
    extra: str,
    data: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with ``args`` (``data`` on its stdin); without ffmpeg, a timeout or a binary that
    cannot start, an ``error`` saying so (the missing one names ``extra``). A non-zero exit is
    returned, not raised: the caller knows what the call was for and says so."""
    exe = find_ffmpeg()
    if exe is None:
        raise missing_extra(error, what, "ffmpeg on PATH or imageio-ffmpeg", extra)
    try:
        return subprocess.run(
            [exe, "-hide_banner", "-nostdin", *args],
            input=data,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what}: ffmpeg took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise error(f"{what}: cannot run ffmpeg ({exe}): {exc.strerror or exc}") from None


def last_line(stderr: bytes | str) -> str:
    """The line of ffmpeg's error output that says what went wrong (its last meaningful one)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    meaningful = [line for line in lines if "output file" not in line]
    return (meaningful or lines or ["no output"])[-1]
