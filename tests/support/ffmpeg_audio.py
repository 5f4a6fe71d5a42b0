"""Audio as a listener gets it: decoded by ffmpeg itself, not read back by the code under test."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import numpy as np

from bot.ffmpeg import find_ffmpeg

_STREAM = re.compile(r"Stream #0:0.*?: Audio: (\w+).*?, (\d+) Hz")


@dataclass(frozen=True)
class Decoded:
    """What ffmpeg made of a file: the codec it found, its sample rate, and the samples (mono)."""

    codec: str
    sample_rate: int
    samples: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def rms(self) -> float:
        """Loudness in [0, 1] (full-scale sine: 0.71)."""
        return float(np.sqrt(np.mean(np.square(self.samples / 32768.0)))) if len(self.samples) else 0.0


def ffmpeg_decode(data: bytes) -> Decoded:
    """``data`` decoded by ffmpeg to 16-bit mono at the stream's own rate; fails the test if it cannot."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None, "these tests need ffmpeg (on PATH or from imageio-ffmpeg)"
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", "pipe:0", "-ac", "1", "-f", "s16le", "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    stream = _STREAM.search(stderr)
    assert stream is not None, stderr
    samples = np.frombuffer(done.stdout[: len(done.stdout) // 2 * 2], dtype="<i2")
    return Decoded(stream.group(1), int(stream.group(2)), samples)
