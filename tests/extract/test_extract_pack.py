"""Whole runs of ``extract_pack`` on a real video and real subtitle files, and every bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from bot.engine.packs import load_pack
from bot.errors import ExtractError
from bot.extract import Episode, ExtractOptions, ExtractSummary, FrameSettings, extract_pack
from bot.extract.frames import FrameRequest
from tests.extract.inputs import SRT_EN, second_of, snapshot


def _images(pack: Path) -> list[dict[str, str]]:
    return [json.loads(row) for row in (pack / "images.jsonl").read_text("utf-8").splitlines()]


def _scene(pack: Path, number: int) -> list[str]:
    return (pack / "scenes" / f"{number:03d}.txt").read_text("utf-8").splitlines()


def test_an_english_episode_becomes_a_pack(tmp_path: Path, video: Path, srt_en: Path) -> None:
    out = tmp_path / "characters" / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, ["Keeper"], episodes=[Episode(srt_en, video)]))

    assert _scene(out, 1) == [
        "Pip:「Orla, the storm is coming.」",
        "Orla:「Then tie the boat twice.」",
        "Narrator:「The wind howls.」",
    ]
    assert _scene(out, 2) == ["Tam:「Your cat ate my fish.」", "Orla:「Barnacle has taste.」"]
    entries = _images(out)
    assert entries == [
        {"image": "images/0001.jpg", "text": "Then tie the boat twice.", "scene": "scenes/001.txt"},
        {"image": "images/0002.jpg", "text": "Barnacle has taste.", "scene": "scenes/002.txt"},
    ]
    for entry, second in zip(entries, [3, 16], strict=True):
        with Image.open(out / entry["image"]) as image:
            assert image.format == "JPEG"
            assert image.size == (160, 120)
        assert second_of(out / entry["image"]) == second
        assert f"Orla:「{entry['text']}」" in _scene(out, int(entry["scene"][7:10]))

    pack = load_pack(out)
    assert (pack.name, pack.aliases, pack.settings.language) == ("Orla", ["Keeper"], "en")
    assert "EDIT ME" in pack.settings.persona
    assert (summary.scenes_kept, summary.character_lines, summary.images, summary.lines) == (2, 2, 2, 5)
    assert summary.created
    assert summary.lines_per_s > 0
    text = summary.render()
    assert "created " in text
    assert "5 read, 2 by Orla (others: Pip 1, Narrator 1, Tam 1)" in text
    assert "lines/s" in text
    assert [p.name for p in out.parent.iterdir()] == ["orla"], "no staging folder left behind"


def test_two_chinese_episodes_in_utf16_and_gbk_with_a_speaker_map(
    tmp_path: Path, video: Path, ass_zh_utf16: Path, srt_zh_gbk: Path, speaker_map_zh: Path
) -> None:
    out = tmp_path / "xiaoman"
    summary = extract_pack(
        ExtractOptions(
            "苏小满",
            out,
            ["小满"],
            episodes=[Episode(ass_zh_utf16, video), Episode(srt_zh_gbk, video)],
            speaker_map=speaker_map_zh,
        )
    )
    assert summary.language == "zh"
    assert [_scene(out, n) for n in range(1, 5)] == [
        ["周老师:「小满，老规矩。」", "苏小满:「龙井一壶， 水要八十五度。」", "旁白:「门外下起了小雨。」"],
        ["苏小满:「茶催不得。」", "阿杰:「掌柜的，来杯冰的！」", "苏小满:「冰的伤胃，给你温的。」"],
        ["周老师:「小满，下盘棋？」", "苏小满:「您先把药吃了。」"],
        ["苏小满:「得嘞。」"],
    ]
    entries = _images(out)
    assert [entry["text"] for entry in entries] == [
        "龙井一壶， 水要八十五度。",
        "茶催不得。",
        "冰的伤胃，给你温的。",
        "您先把药吃了。",
        "得嘞。",
    ]
    assert [second_of(out / entry["image"]) for entry in entries] == [3, 14, 17, 3, 11]
    pack = load_pack(out)
    assert (pack.name, pack.settings.language, len(pack.screenshots)) == ("苏小满", "zh", 5)


def test_a_rerun_keeps_the_persona_and_other_files_and_replaces_scenes(
    tmp_path: Path, video: Path, srt_en: Path
) -> None:
    out = tmp_path / "orla"
    extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))
    toml = (out / "character.toml").read_text("utf-8")
    edited = toml.split("persona")[0] + 'persona = """\nYou are Orla, keeper of Skerrow Light.\n"""\n'
    (out / "character.toml").write_text(edited + 'avatar = "images/avatar.png"\n', encoding="utf-8")
    Image.new("RGB", (8, 8)).save(out / "images" / "avatar.png")

    shorter = tmp_path / "short.srt"
    shorter.write_text(SRT_EN.split("\n4\n")[0], encoding="utf-8")
    summary = extract_pack(ExtractOptions("Orla", out, episodes=[Episode(shorter, video)]))

    assert not summary.created
    assert (out / "character.toml").read_text("utf-8") == edited + 'avatar = "images/avatar.png"\n'
    assert sorted(p.name for p in (out / "scenes").iterdir()) == ["001.txt"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0001.jpg", "avatar.png"]
    assert load_pack(out).settings.persona.strip() == "You are Orla, keeper of Skerrow Light."


def test_transcripts_and_subtitles_without_video(tmp_path: Path, srt_en: Path) -> None:
    transcript = tmp_path / "extra.txt"
    transcript.write_text("Pip: Lamp lit?\nOrla: Since dusk.\n\nTam: Fish?\n", encoding="utf-8")
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("orla", out, episodes=[Episode(srt_en)], transcripts=[transcript]))
    assert (summary.scenes_found, summary.scenes_kept, summary.images) == (4, 3, 0)
    assert _scene(out, 3) == ["Pip:「Lamp lit?」", "orla:「Since dusk.」"]
    assert not (out / "images.jsonl").exists()
    assert len(load_pack(out).scenes) == 3


def test_jsonl_from_another_tool_copies_the_images(tmp_path: Path) -> None:
    source = tmp_path / "tool-output"
    (source / "frames").mkdir(parents=True)
    for name in ("a.png", "b.jpg", "c.jpg"):
        Image.new("RGB", (16, 16), "red").save(source / "frames" / name)
    rows = [
        {"image": "frames/a.png", "text": "Orla:「Then tie the boat twice.」", "scene": 1},
        {"image": "frames/b.jpg", "text": "Pip: Twice?", "scene": 1},
        {"image": str(source / "frames" / "c.jpg"), "text": "The lamp keeps me company."},
    ]
    (source / "lines.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n", "utf-8")
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, jsonl=[source]))
    assert _scene(out, 1) == ["Orla:「Then tie the boat twice.」", "Pip:「Twice?」"]
    assert _scene(out, 2) == ["Orla:「The lamp keeps me company.」"]
    assert _images(out) == [
        {"image": "images/0001.png", "text": "Then tie the boat twice.", "scene": "scenes/001.txt"},
        {"image": "images/0002.jpg", "text": "The lamp keeps me company.", "scene": "scenes/002.txt"},
    ]
    assert summary.images == 2
    assert len(load_pack(out).screenshots) == 2


BadInput = Callable[[Path, Path, Path], tuple[ExtractOptions, str]]
"""Builds bad options from (tmp folder, video, srt) and gives the start of the expected message."""


def _corrupt_video(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    broken = tmp / "broken.mkv"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 16)
    return ExtractOptions(
        "Orla", tmp, episodes=[Episode(srt, broken)]
    ), f"{broken}: ffmpeg cannot read this video ("


def _text_as_video(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    fake = tmp / "ep.mp4"
    fake.write_text("not a video at all", encoding="utf-8")
    return ExtractOptions(
        "Orla", tmp, episodes=[Episode(srt, fake)]
    ), f"{fake}: ffmpeg cannot read this video ("


def _late_subtitles(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    late = tmp / "late.srt"
    late.write_text(SRT_EN + "\n6\n00:00:25,000 --> 00:00:26,000\nOrla: Too late.\n", encoding="utf-8")
    message = f"{late}:22: the line starts at 0:00:25.000, after the end of {video} (0:00:20.000)"
    return ExtractOptions("Orla", tmp, episodes=[Episode(late, video)]), message


def _undecodable(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    noise = tmp / "noise.srt"
    noise.write_bytes(bytes(range(256)) * 8)
    return ExtractOptions(
        "Orla", tmp, episodes=[Episode(noise, video)]
    ), f"{noise}: cannot tell the text encoding"


def _unknown_character(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    frequent = "most frequent speakers: Orla (2), Pip (1), Tam (1); did you mean 'Orla'?"
    message = f"'Orlaa' never speaks in {srt}; {frequent}"
    return ExtractOptions("Orlaa", tmp, episodes=[Episode(srt, video)]), message


def _missing_video(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    gone = tmp / "EP09.mkv"
    return ExtractOptions("Orla", tmp, episodes=[Episode(srt, gone)]), f"{gone}: no such video file"


def _missing_subtitles(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    gone = tmp / "EP09.ass"
    return ExtractOptions("Orla", tmp, episodes=[Episode(gone, video)]), f"{gone}: no such subtitles file"


def _missing_jsonl_image(tmp: Path, video: Path, srt: Path) -> tuple[ExtractOptions, str]:
    lines = tmp / "lines.jsonl"
    lines.write_text('{"image": "nope.jpg", "text": "Orla: Hi."}\n', encoding="utf-8")
    return ExtractOptions("Orla", tmp, jsonl=[lines]), f"{lines}:1: image 'nope.jpg' does not exist"


BAD_INPUTS: dict[str, BadInput] = {
    "corrupt video": _corrupt_video,
    "text file as video": _text_as_video,
    "subtitles past the end": _late_subtitles,
    "undecodable subtitles": _undecodable,
    "unknown character": _unknown_character,
    "missing video": _missing_video,
    "missing subtitles": _missing_subtitles,
    "missing jsonl image": _missing_jsonl_image,
}


@pytest.mark.parametrize("existing", [False, True], ids=["new pack", "existing pack"])
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    case: str, existing: bool, tmp_path: Path, video: Path, srt_en: Path
) -> None:
    characters = tmp_path / "characters"
    characters.mkdir()
    options, message = BAD_INPUTS[case](tmp_path, video, srt_en)
    options.out = characters / "orla"
    if existing:
        extract_pack(ExtractOptions("Orla", options.out, episodes=[Episode(srt_en, video)]))
    before = snapshot(characters)

    with pytest.raises(ExtractError) as caught:
        extract_pack(options)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert snapshot(characters) == before
    assert [p.name for p in characters.iterdir()] == (["orla"] if existing else [])


def test_a_failure_while_grabbing_frames_leaves_the_old_pack(
    tmp_path: Path, video: Path, srt_en: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "orla"
    extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))
    before = snapshot(tmp_path)

    def half_a_frame(request: FrameRequest, settings: FrameSettings | None = None) -> None:
        request.target.write_bytes(b"\xff\xd8 half a JPEG")
        raise ExtractError(f"{request.video}: the disk is full")

    monkeypatch.setattr("bot.extract.frames.grab_frame", half_a_frame)
    with pytest.raises(ExtractError, match="the disk is full"):
        extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["orla", "ep01.en.srt"])


def test_out_must_be_a_pack_id_and_not_someone_elses_folder(tmp_path: Path, srt_en: Path) -> None:
    with pytest.raises(ExtractError, match="the folder name is the pack id"):
        extract_pack(ExtractOptions("Orla", tmp_path / "Orla Finch", episodes=[Episode(srt_en)]))
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"...")
    with pytest.raises(ExtractError, match=r"is not empty and has no character\.toml"):
        extract_pack(ExtractOptions("Orla", other, episodes=[Episode(srt_en)]))
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]


def test_throughput_is_reported(tmp_path: Path, video: Path, srt_en: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    episodes = []
    for number in range(4):
        copy = many / f"ep{number}.srt"
        shutil.copyfile(srt_en, copy)
        episodes.append(Episode(copy, video))
    summary: ExtractSummary = extract_pack(ExtractOptions("Orla", tmp_path / "orla", episodes=episodes))
    assert (summary.episodes, summary.lines, summary.images) == (4, 20, 8)
    assert summary.lines_per_s == pytest.approx(summary.lines / summary.elapsed_s)
    print(summary.render())
