"""``detect_format`` tells every supported input apart, by content where the name is not enough."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import PackError
from bot.importers import FORMATS, detect_format
from tests.importers.samples import (
    CHEN_TRANSCRIPT,
    WREN,
    WREN_QA,
    WREN_V1,
    pack_entries,
    v2,
    v3,
    write_card_png,
    write_charx,
    write_chatharuhi_folder,
    write_chatharuhi_jsonl,
    write_json,
    write_text,
    write_zip,
)
from tests.packs import write_pack

SAMPLES: dict[str, Callable[[Path], Path]] = {
    "pack-folder": lambda folder: write_pack(folder),
    "pack-zip": lambda folder: write_zip(folder / "tamsin.zip", pack_entries("tamsin/")),
    "card-png": lambda folder: write_card_png(folder / "wren.png", {"chara": v2(WREN)}),
    "card-json": lambda folder: write_json(folder / "wren.json", WREN_V1),
    "charx": lambda folder: write_charx(folder / "wren.charx"),
    "chatharuhi-jsonl": lambda folder: write_chatharuhi_jsonl(folder / "aman.jsonl"),
    "chatharuhi-folder": lambda folder: write_chatharuhi_folder(folder / "aman"),
    "qa": lambda folder: write_text(folder / "qa.txt", WREN_QA, "utf-8"),
    "transcript": lambda folder: write_text(folder / "chen.txt", CHEN_TRANSCRIPT, "utf-16"),
}


def test_every_format_has_a_sample() -> None:
    assert set(SAMPLES) == set(FORMATS)


@pytest.mark.parametrize("expected", FORMATS)
def test_detect_format(inputs: Path, expected: str) -> None:
    assert detect_format(SAMPLES[expected](inputs)) == expected


def test_content_wins_over_a_misleading_name(inputs: Path) -> None:
    card = write_card_png(inputs / "wren.txt", {"ccv3": v3(WREN)})
    charx = write_charx(inputs / "wren.zip")

    assert detect_format(card) == "card-png"
    assert detect_format(charx) == "charx"


def test_what_cannot_be_told_is_refused_naming_the_path(inputs: Path) -> None:
    empty = inputs / "empty-folder"
    empty.mkdir()

    with pytest.raises(PackError, match=r"holds neither character\.toml") as caught:
        detect_format(empty)
    assert caught.value.path == empty
    with pytest.raises(PackError, match="no such file or folder"):
        detect_format(inputs / "missing.png")
    with pytest.raises(PackError, match="cannot tell what this file holds"):
        detect_format(write_text(inputs / "notes.docx", "hello", "utf-8"))


def test_a_zipped_pack_that_keeps_its_card_json_is_still_a_pack(inputs: Path) -> None:
    archive = write_zip(inputs / "wren.zip", {**pack_entries(), "card.json": json.dumps(WREN)})

    assert detect_format(archive) == "pack-zip"
