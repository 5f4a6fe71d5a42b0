"""Real inputs for the extraction tests: a generated video whose frames tell their second, and subtitles.

The video is ``SECONDS`` long and uniformly grey; its brightness steps up once per second, so the mean
of a grabbed frame says which second it was taken from (:func:`second_of`). Its sound is silence except
during each line of :data:`SRT_EN`, when a sine tone of that line's own pitch plays (:data:`TONES`), so
a cut voice line shows by its pitch which line it is and by its first milliseconds where it starts.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageStat

from bot.extract.media import ffmpeg_exe

SECONDS = 20
RATE = 16_000
"""Samples per second of the video's sound, and of the audio :func:`decode_audio` returns."""
TONES = ((1.0, 2.0, 300), (2.5, 4.5, 500), (5.0, 6.0, 700), (14.0, 15.0, 900), (15.2, 17.8, 1100))
"""(start s, end s, Hz) of the tone during each line of :data:`SRT_EN`, in order."""
_STEP = 10 * 255 / 219
"""Grey levels per second after decoding: +10 in limited-range luma, expanded to full range."""


def make_video(path: Path, seconds: int = SECONDS, *, sound: bool = True) -> Path:
    """A 160x120, 10 fps video whose luma is ``16 + 10 × second`` (one keyframe per second), with the
    :data:`TONES` as its mono 16 kHz PCM sound (none if not ``sound``)."""
    tones = "+".join(f"between(t,{start},{end})*0.5*sin(2*PI*{hz}*t)" for start, end, hz in TONES)
    audio = ["-f", "lavfi", "-i", f"aevalsrc='{tones}':s={RATE}:d={seconds}", "-c:a", "pcm_s16le"]
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
            "-i", f"color=c=black:s=160x120:r=10:d={seconds},format=yuv420p,"
            "geq=lum='16+10*floor(T)':cb=128:cr=128", *(audio if sound else []),
            "-c:v", "mpeg4", "-q:v", "2", "-g", "10", "-y", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def decode_audio(path: Path) -> NDArray[np.float64]:
    """An audio file decoded by ffmpeg to mono :data:`RATE` Hz samples in -1…1."""
    pcm = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
         "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def rms(samples: NDArray[np.float64]) -> float:
    """Root mean square: 0 for silence, about 0.35 for a sine of amplitude 0.5."""
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def dominant_hz(samples: NDArray[np.float64]) -> float:
    """The strongest frequency in ``samples``: the pitch of a tone."""
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(spectrum.argmax())])


def second_of(image: Path) -> int:
    """Which second of :func:`make_video`'s video a frame comes from."""
    with Image.open(image) as frame:
        frame.load()
        mean = ImageStat.Stat(frame.convert("L")).mean[0]
    return round(mean / _STEP)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path → content hash), to prove a failed run changed nothing."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


SRT_EN = """1
00:00:01,000 --> 00:00:02,000
Pip: Orla, the storm is coming.

2
00:00:02,500 --> 00:00:04,500
Orla: Then tie the boat <i>twice</i>.

3
00:00:05,000 --> 00:00:06,000
The wind howls.

4
00:00:14,000 --> 00:00:15,000
Tam: Your cat ate my fish.

5
00:00:15,200 --> 00:00:17,800
ORLA：Barnacle has taste.
"""
"""Two scenes (the 8 s silence splits them); Orla speaks at 3.5 s and 16.5 s."""

_STYLE = "Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1"

ASS_ZH = f"""[Script Info]
ScriptType: v4.00+
PlayResX: 160
PlayResY: 120

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, \
Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, \
MarginL, MarginR, MarginV, Encoding
Style: Default,{_STYLE}
Style: Thoughts,{_STYLE}
Style: Sign,{_STYLE}

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,老周,0,0,0,,小满，老规矩。
Dialogue: 0,0:00:02.20,0:00:04.80,Default,苏小满,0,0,0,,{{\\i1}}龙井一壶，{{\\i0}}\\N水要八十五度。
Comment: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,翻译注：龙井是绿茶
Dialogue: 0,0:00:05.00,0:00:06.00,Sign,,0,0,0,,{{\\pos(80,20)}}半盏茶馆
Dialogue: 0,0:00:06.20,0:00:07.80,Default,,0,0,0,,门外下起了小雨。
Dialogue: 0,0:00:14.20,0:00:15.40,Thoughts,,0,0,0,,茶催不得。
Dialogue: 0,0:00:16.00,0:00:17.00,Default,阿杰,0,0,0,,掌柜的，来杯冰的！
Dialogue: 0,0:00:17.30,0:00:18.30,Default,,0,0,0,,小满：冰的伤胃，给你温的。
"""
"""Two scenes; 苏小满 speaks by Name field (3.5 s), by style "Thoughts" (14.8 s, with the speaker
map) and by a ``小满：`` prefix (17.8 s). The comment is dropped, the sign is narration or skipped."""

SPEAKER_MAP_ZH = """skip_styles = ["Sign"]

[names]
"老周" = "周老师"

[styles]
"Thoughts" = "苏小满"
"""

SRT_ZH = """1
00:00:02,000 --> 00:00:03,000
老周：小满，下盘棋？

2
00:00:03,200 --> 00:00:04,600
苏小满：「您先把药吃了。」

3
00:00:11,000 --> 00:00:12,400
小满：得嘞。
"""
"""Written as GBK in the tests: two scenes, 苏小满 at 3.9 s and (as 小满) at 11.7 s."""
