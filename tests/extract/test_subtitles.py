"""Reading subtitles: speakers (ASS Name, prefix, speaker map, narrator), cleaning, encodings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.errors import ExtractError
from bot.extract.speakers import CharacterNames, SpeakerMap, detect_language, split_prefix
from bot.extract.subtitles import read_subtitles
from bot.extract.textfiles import read_text
from bot.extract.transcripts import read_transcript
from tests.extract.inputs import SRT_ZH


def test_srt_prefixes_name_the_speakers_and_tags_are_stripped(srt_en: Path) -> None:
    lines = read_subtitles(srt_en)
    assert [(line.speaker, line.text) for line in lines] == [
        ("Pip", "Orla, the storm is coming."),
        ("Orla", "Then tie the boat twice."),
        (None, "The wind howls."),
        ("Tam", "Your cat ate my fish."),
        ("ORLA", "Barnacle has taste."),
    ]
    assert [(line.start_ms, line.end_ms) for line in lines][1] == (2500, 4500)
    assert lines[1].where == f"{srt_en}:6"


def test_ass_name_field_style_map_skip_and_narrator(ass_zh_utf16: Path, speaker_map_zh: Path) -> None:
    plain = read_subtitles(ass_zh_utf16)
    assert [(line.speaker, line.text) for line in plain] == [
        ("老周", "小满，老规矩。"),
        ("苏小满", "龙井一壶， 水要八十五度。"),
        (None, "半盏茶馆"),
        (None, "门外下起了小雨。"),
        (None, "茶催不得。"),
        ("阿杰", "掌柜的，来杯冰的！"),
        ("小满", "冰的伤胃，给你温的。"),
    ]
    mapped = read_subtitles(ass_zh_utf16, SpeakerMap.load(speaker_map_zh))
    assert [line.speaker for line in mapped] == ["周老师", "苏小满", None, "苏小满", "阿杰", "小满"]
    assert "半盏茶馆" not in [line.text for line in mapped]
    assert mapped[0].where.endswith(":14")


def test_json_speaker_map_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"names": {"O.": "Orla"}, "skip_styles": ["OP"]}), encoding="utf-8")
    speakers = SpeakerMap.load(path)
    assert speakers.speaker("o.") == "Orla"
    assert speakers.skips("op")
    path.write_text(json.dumps({"actors": {}}), encoding="utf-8")
    with pytest.raises(ExtractError, match="unknown key 'actors'"):
        SpeakerMap.load(path)
    bad = tmp_path / "map.toml"
    bad.write_text("[names]\nOrla = 3\n", encoding="utf-8")
    with pytest.raises(ExtractError, match='names must be a table of name = "speaker" strings'):
        SpeakerMap.load(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Orla: Then tie it.", ("Orla", "Then tie it.")),
        ("小满：冰的伤胃。", ("小满", "冰的伤胃。")),
        ("Mr. Finch: Evening.", ("Mr. Finch", "Evening.")),
        ("苏小满:「您先把药吃了。」", ("苏小满", "您先把药吃了。")),
        ("10:30 already?", None),
        ("Wait, look: a ship!", None),
        ("See http://example.com", None),
        ("Orla:", None),
    ],
)
def test_name_prefix(text: str, expected: tuple[str, str] | None) -> None:
    assert split_prefix(text) == expected


def test_character_names_ignore_case_and_include_aliases() -> None:
    names = CharacterNames("Orla Finch", ["Orla", "Keeper"])
    assert "ORLA" in names
    assert "keeper " in names
    assert "Orlando" not in names


def test_language_is_detected_from_cjk_share() -> None:
    assert detect_language(["小满，老规矩。", "OK"]) == "zh"
    assert detect_language(["Then tie the boat twice.", "好"]) == "en"


def test_gbk_utf16_and_bom_files_decode(tmp_path: Path) -> None:
    for name, data in {
        "gbk.srt": SRT_ZH.encode("gbk"),
        "utf16le-nobom.srt": SRT_ZH.encode("utf-16-le"),
        "utf16be.srt": SRT_ZH.encode("utf-16"),
        "utf8bom.srt": SRT_ZH.encode("utf-8-sig"),
    }.items():
        (tmp_path / name).write_bytes(data)
        assert read_text(tmp_path / name) == SRT_ZH, name
        assert [line.speaker for line in read_subtitles(tmp_path / name)] == ["老周", "苏小满", "小满"]


def test_undecodable_or_non_subtitle_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "random.srt"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ExtractError, match=r"random\.srt: "):
        read_subtitles(binary)
    prose = tmp_path / "notes.srt"
    prose.write_text("just some notes, no timings\n", encoding="utf-8")
    with pytest.raises(ExtractError, match=r"notes\.srt: not a subtitle file"):
        read_subtitles(prose)
    wrong = tmp_path / "wrong.srt"
    wrong.write_bytes(SRT_ZH.encode("gbk"))
    with pytest.raises(ExtractError, match=r"wrong\.srt:3: not valid utf-8 text"):
        read_subtitles(wrong, encoding="utf-8")


def test_transcript_scenes_break_at_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "talk.txt"
    path.write_text(
        "Pip: Is the lamp lit?\nOrla:「Since dusk.」\n\n\nThe gulls settle.\nORLA: Go home, Pip.\n",
        encoding="utf-8",
    )
    scenes = read_transcript(path)
    assert [[(line.speaker, line.text) for line in scene] for scene in scenes] == [
        [("Pip", "Is the lamp lit?"), ("Orla", "Since dusk.")],
        [(None, "The gulls settle."), ("ORLA", "Go home, Pip.")],
    ]
