"""Pack extraction: episodes (video + subtitles), transcripts or ``{image, text}`` jsonl → a character pack.

``python -m bot extract`` (see :mod:`bot.extract.cli`) reads the inputs with :mod:`.subtitles`, groups
lines into scenes with :mod:`.scenes`, grabs frames with :mod:`.frames` and writes the pack with
:mod:`.writer`, all in a temporary folder that replaces ``--out`` only once the pack validates.
"""

from __future__ import annotations

from bot.extract.writer import ExtractOptions, ExtractSummary, extract_pack

__all__ = ["ExtractOptions", "ExtractSummary", "extract_pack"]
