"""Video + subtitles (or a transcript, or another tool's ``{image, text}`` jsonl) → a character pack.

``python -m bot extract`` calls :func:`extract_pack`. The steps live in their own modules:
:mod:`.textfiles` decodes any encoding, :mod:`.subtitles` / :mod:`.transcripts` / :mod:`.jsonl` read the
inputs into speaker-attributed lines (:mod:`.speakers` decides who speaks), :mod:`.scenes` groups them,
:mod:`.frames` grabs screenshots and :mod:`.voices` cuts the character's voice lines with ffmpeg
(found, run and probed by :mod:`.media`), and :mod:`.writer` builds the pack beside ``--out`` and swaps it
in only once it validates.
"""

from __future__ import annotations

from bot.extract.frames import FrameSettings
from bot.extract.pipeline import Episode, ExtractOptions, ExtractSummary, extract_pack
from bot.extract.scenes import SceneLimits
from bot.extract.speakers import SpeakerMap
from bot.extract.subtitles import SubtitleLine
from bot.extract.voices import VoiceReport, VoiceSettings

__all__ = [
    "Episode",
    "ExtractOptions",
    "ExtractSummary",
    "FrameSettings",
    "SceneLimits",
    "SpeakerMap",
    "SubtitleLine",
    "VoiceReport",
    "VoiceSettings",
    "extract_pack",
]
