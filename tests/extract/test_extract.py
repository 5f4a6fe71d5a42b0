"""The extraction tool on real inputs: a generated video, hand-written SRT/ASS files, transcripts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from bot.cli import main
from bot.engine.packs import load_pack
from bot.errors import ExtractError
from bot.extract import ExtractOptions, extract_pack
from bot.extract.frames import ffmpeg_exe
from bot.extract.subtitles import SpeakerMap, read_subtitles
from bot.extract.writer import Episode

SECONDS = 20

SRT = """1
00:00:01,000 --> 00:00:02,000
Pip: Orla, the storm is coming.

2
00:00:02,500 --> 00:00:04,500
Orla: Then tie the boat twice.

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

ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, \
MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1
Style: Keeper,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,老周,0,0,0,,小满，今天喝什么？
Dialogue: 0,0:00:03.00,0:00:05.00,Default,苏小满,0,0,0,,{\\i1}下雨天，\\N来壶普洱。{\\i0}
Dialogue: 0,0:00:12.00,0:00:13.00,Default,,0,0,0,,旁边的猫叫了一声。
Dialogue: 0,0:00:13.20,0:00:14.80,Keeper,,0,0,0,,中秋我不回家。
"""


def luma_second(path: Path) -> int:
    """Which second of the test video a frame comes from: its brightness is 12 × the second."""
    with Image.open(path) as image:
        mean = ImageStat.Stat(image.convert("L")).mean[0]
    return min(range(SECONDS), key=lambda second: abs((12 * second - 16) * 255 / 219 - mean))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "ep01.mp4"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", f"color=c=black:s=160x120:r=10:d={SECONDS}",
            "-vf", "geq=lum='12*floor(T)':cb=128:cr=128", "-c:v", "mpeg4", "-q:v", "2", "-y", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def srt(tmp_path: Path) -> Path:
    path = tmp_path / "ep01.srt"
    path.write_text(SRT, encoding="utf-8")
    return path


def test_speakers_from_prefix_ass_name_and_speaker_map(tmp_path: Path, srt: Path) -> None:
    assert [(line.speaker, line.text) for line in read_subtitles(srt)] == [
        ("Pip", "Orla, the storm is coming."),
        ("Orla", "Then tie the boat twice."),
        (None, "The wind howls."),
        ("Tam", "Your cat ate my fish."),
        ("ORLA", "Barnacle has taste."),
    ]
    ass = tmp_path / "ep01.ass"
    ass.write_text(ASS, encoding="utf-8")
    lines = read_subtitles(ass, SpeakerMap(styles={"Keeper": "苏小满"}))
    assert [(line.speaker, line.text) for line in lines] == [
        ("老周", "小满，今天喝什么？"),
        ("苏小满", "下雨天， 来壶普洱。"),
        (None, "旁边的猫叫了一声。"),
        ("苏小满", "中秋我不回家。"),
    ]


@pytest.mark.parametrize("encoding", ["gbk", "utf-16", "utf-8-sig"])
def test_subtitles_in_other_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "ep.ass"
    path.write_bytes(ASS.encode(encoding))
    assert read_subtitles(path)[1].text == "下雨天， 来壶普洱。"


def test_video_and_srt_make_a_pack_with_the_right_frames(tmp_path: Path, video: Path, srt: Path) -> None:
    out = tmp_path / "characters" / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, [Episode(srt, video)], scene_gap_s=3))
    assert (summary.scenes, summary.lines, summary.images) == (2, 2, 2)

    assert (out / "scenes" / "001.txt").read_text(encoding="utf-8").splitlines() == [
        "Pip:「Orla, the storm is coming.」",
        "Orla:「Then tie the boat twice.」",
        "Narrator:「The wind howls.」",
    ]
    assert (out / "scenes" / "002.txt").read_text(encoding="utf-8").splitlines() == [
        "Tam:「Your cat ate my fish.」",
        "Orla:「Barnacle has taste.」",
    ]
    entries = [json.loads(line) for line in (out / "images.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["text"], e["scene"]) for e in entries] == [
        ("Then tie the boat twice.", "scenes/001.txt"),
        ("Barnacle has taste.", "scenes/002.txt"),
    ]
    assert [luma_second(out / e["image"]) for e in entries] == [3, 16], "frames at the lines' midpoints"

    pack = load_pack(out)
    assert pack.name == "Orla"
    assert pack.settings.language == "en"
    assert len(pack.screenshots) == 2
    assert not list(out.parent.glob(".extract-*")), "the work folder is gone"


def test_a_rerun_keeps_the_persona(tmp_path: Path, video: Path, srt: Path) -> None:
    out = tmp_path / "orla"
    extract_pack(ExtractOptions("Orla", out, [Episode(srt, video)]))
    toml = (out / "character.toml").read_text(encoding="utf-8")
    (out / "character.toml").write_text(toml.replace("You are Orla.", "You are Orla, the keeper."), "utf-8")
    extract_pack(ExtractOptions("Orla", out, [Episode(srt, video)], scene_gap_s=3))
    assert load_pack(out).settings.persona.startswith("You are Orla, the keeper.")
    assert len(load_pack(out).scenes) == 2


def test_chinese_ass_with_two_episodes_and_a_speaker_map(tmp_path: Path, video: Path) -> None:
    ass = tmp_path / "ep.ass"
    ass.write_bytes(ASS.encode("gbk"))
    speakers = tmp_path / "speakers.toml"
    speakers.write_text('[styles]\nKeeper = "苏小满"\n', encoding="utf-8")
    out = tmp_path / "xiaoman"
    options = ExtractOptions(
        "苏小满", out, [Episode(ass, video), Episode(ass, video)], aliases=["小满"], speaker_map=speakers
    )
    summary = extract_pack(options)
    assert (summary.episodes, summary.scenes, summary.images) == (2, 4, 4)
    pack = load_pack(out)
    assert pack.settings.language == "zh"
    assert pack.aliases == ["小满"]
    assert [line.speaker for line in pack.scenes[1].lines] == ["旁白", "苏小满"]
    assert [luma_second(shot.path) for shot in pack.screenshots] == [4, 14, 4, 14]


def test_transcript_and_jsonl_without_video(tmp_path: Path) -> None:
    transcript = tmp_path / "talk.txt"
    transcript.write_text("Pip: Hello.\nOrla: Aye.\n\nTam: Fish?\nOrla: Gone.\nthe door slams\n", "utf-8")
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (64, 48), "blue").save(frames / "a.png")
    (frames / "lines.jsonl").write_text('{"image": "a.png", "text": "The lamp is lit."}\n', encoding="utf-8")
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, transcripts=[transcript], jsonl=[frames]))
    assert (summary.scenes, summary.lines, summary.images) == (3, 3, 1)
    pack = load_pack(out)
    assert [line.render() for line in pack.scenes[1].lines] == [
        "Tam:「Fish?」",
        "Orla:「Gone.」",
        "Narrator:「the door slams」",
    ]
    assert pack.screenshots[0].text == "The lamp is lit."
    assert pack.screenshots[0].path.suffix == ".png"


def test_bad_inputs_say_what_is_wrong_and_write_nothing(tmp_path: Path, video: Path, srt: Path) -> None:
    out = tmp_path / "orla"
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(ExtractError, match=r"broken\.mkv: ffmpeg cannot read this video"):
        extract_pack(ExtractOptions("Orla", out, [Episode(srt, broken)]))
    late = tmp_path / "late.srt"
    late.write_text(SRT.replace("00:00:14,000 --> 00:00:15,000", "00:01:14,000 --> 00:01:15,000"), "utf-8")
    with pytest.raises(
        ExtractError, match=r"late\.srt: line 4 starts at 00:01:14\.00 but .* ends at 00:00:20\.00"
    ):
        extract_pack(ExtractOptions("Orla", out, [Episode(late, video)]))
    with pytest.raises(
        ExtractError, match=r"'Maeve' never speaks in .*the speakers found are: Pip \(1\), Orla \(1\)"
    ):
        extract_pack(ExtractOptions("Maeve", out, [Episode(srt, video)]))
    with pytest.raises(ExtractError, match=r"gone\.srt: cannot read"):
        extract_pack(ExtractOptions("Orla", out, [Episode(tmp_path / "gone.srt", video)]))
    assert not out.exists()
    assert list(tmp_path.glob(".extract-*")) == []

    extract_pack(ExtractOptions("Orla", out, [Episode(srt, video)]))
    before = sorted(path.name for path in out.rglob("*"))
    with pytest.raises(ExtractError):
        extract_pack(ExtractOptions("Orla", out, [Episode(srt, broken)]))
    assert sorted(path.name for path in out.rglob("*")) == before, (
        "a failed run leaves the old pack as it was"
    )


def test_cli(tmp_path: Path, video: Path, srt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "orla"
    code = main(
        ["extract", "--video", str(video), "--subtitles", str(srt), "--character", "orla", "--out", str(out)]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith(
        f"wrote {out}: 1 episode(s), 2 scenes, 2 lines of the character, 2 images"
    )
    assert main(["extract", "--video", str(video), "--character", "Orla", "--out", str(out)]) == 2
    assert "give one --subtitles per --video" in capsys.readouterr().err


async def test_an_extracted_pack_plays(tmp_path: Path, video: Path, srt: Path) -> None:
    from bot.config import parse_config
    from bot.engine.model import EchoChatModel
    from bot.runtime import Runtime
    from tests.messages import private_message

    extract_pack(ExtractOptions("Orla", tmp_path / "characters" / "orla", [Episode(srt, video)]))
    config = parse_config({"characters": {"default": "orla"}}, source=tmp_path / "bot.toml")
    model = EchoChatModel()
    runtime = await Runtime.create(config, model=model)
    try:
        (reply,) = await runtime.router.handle(private_message("Then tie the boat twice."))
    finally:
        await runtime.aclose()
    assert reply.character == "orla"
    assert reply.images[0].caption == "Then tie the boat twice."
    assert "Orla:「Then tie the boat twice.」" in model.prompts[0].system_text()
