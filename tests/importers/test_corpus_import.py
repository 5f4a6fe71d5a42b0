"""Q&A corpora and plain transcripts become packs of the character they are about."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import PackError
from bot.importers import import_pack
from tests.importers.samples import CHEN_TRANSCRIPT, WREN_QA, WREN_TRANSCRIPT, write_text


def test_a_qa_corpus_with_a_byte_order_mark_is_one_scene_per_pair(characters: Path, inputs: Path) -> None:
    result = import_pack(write_text(inputs / "wren-qa.txt", WREN_QA, "utf-8-sig"), characters)

    assert result.format == "qa"
    pack = result.pack
    assert (pack.id, pack.name) == ("wren", "Wren")
    assert [scene.text for scene in pack.scenes] == [
        "Visitor:「How long is the crossing?」\nWren:「Forty minutes, fifty if the Sound is in a mood.」",
        "Kid:「Can I steer?」\nWren:「When you can see over the wheel, yes.」",
        "Visitor:「Do you ever get seasick?」\nWren:「Only on land.」",
    ]
    assert pack.settings.persona.startswith("You are Wren.")
    assert "EDIT ME" in pack.settings.persona


def test_a_utf16_transcript_in_traditional_chinese_stays_traditional(characters: Path, inputs: Path) -> None:
    result = import_pack(write_text(inputs / "chen.txt", CHEN_TRANSCRIPT, "utf-16"), characters)

    assert result.format == "transcript"
    pack = result.pack
    assert pack.name == "陳婆婆", "the most frequent speaker"
    assert pack.settings.language == "zh"
    assert (
        pack.scenes[0].text
        == "阿樂:「婆婆，今晚有紅豆沙嗎？」\n陳婆婆:「有，煲了一下午，綿得很。」\n阿樂:「那給我一碗，少糖。」"
    )
    assert pack.scenes[1].lines[-1].speaker == "旁白"
    assert "【请编辑】" in pack.settings.persona


def test_the_pack_id_picks_the_character_over_the_most_frequent_speaker(
    characters: Path, inputs: Path
) -> None:
    transcript = write_text(inputs / "harbour.txt", WREN_TRANSCRIPT, "utf-8")

    result = import_pack(transcript, characters, pack_id="wren")

    assert result.pack.name == "Wren"
    assert len(result.pack.scenes) == 2, "the scene in which Wren never speaks is left out"
    assert "1 scene without Wren left out" in result.notes
    assert result.notes[0] == "transcript; speakers: Pip 6, Wren 2, Ines 1"


def test_a_gbk_transcript_imports(characters: Path, inputs: Path) -> None:
    text = "老周：小满，今天喝什么茶？\n小满：下雨天，来壶普洱暖暖身子。\n"
    pack = import_pack(write_text(inputs / "tea.txt", text, "gbk"), characters, pack_id="tea").pack

    assert pack.scenes[0].text == "老周:「小满，今天喝什么茶？」\n小满:「下雨天，来壶普洱暖暖身子。」"


def test_a_text_without_speakers_is_refused(characters: Path, inputs: Path) -> None:
    prose = write_text(inputs / "prose.txt", "The ferry left at nine.\nNobody waved.\n", "utf-8")

    with pytest.raises(PackError, match="no line of the transcript names its speaker") as caught:
        import_pack(prose, characters)
    assert caught.value.path == prose
