"""The speaker-map examples in the extraction docs parse as the tool reads them."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from bot.extract.speakers import SpeakerMap

ROOT = Path(__file__).parents[2]


def _docs() -> str:
    """The extraction section: in docs/extract.md, or in README.md once merged there."""
    for path in (ROOT / "README.md", ROOT / "docs" / "extract.md"):
        if path.exists() and "skip_styles" in (text := path.read_text("utf-8")):
            return text
    raise AssertionError("no speaker-map example (skip_styles) in README.md or docs/extract.md")


def test_the_documented_speaker_maps_parse() -> None:
    text = _docs()
    toml = next(block for block in re.findall(r"```toml\n(.+?)```", text, re.S) if "skip_styles" in block)
    from_toml = SpeakerMap.from_mapping(tomllib.loads(toml))
    assert from_toml.speaker("老周") == "周老师"
    assert from_toml.speaker("voice") is None
    assert from_toml.style_speaker("thoughts") == "苏小满"
    assert from_toml.skips("Sign")
    block = next(block for block in re.findall(r"```json\n(.+?)```", text, re.S) if "skip_styles" in block)
    from_json = SpeakerMap.from_mapping(json.loads(block))
    assert from_json.speaker("老周") == "周老师"
    assert from_json.skips("sign")
