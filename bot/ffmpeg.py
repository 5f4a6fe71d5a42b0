"""Where ffmpeg is: the one on ``PATH``, else the static build inside the ``imageio-ffmpeg`` wheel.

Extraction (frames and voice lines out of video) and voice (encoding speech for chats) both run it;
each raises its own error, naming its extra, when there is none.
"""

from __future__ import annotations

import shutil
from functools import cache


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
