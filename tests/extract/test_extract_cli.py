"""``python -m bot extract`` through ``bot.cli.main``: no bot.toml needed, one line per error."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.engine.packs import load_pack
from bot.errors import ExtractError
from bot.extract import media
from bot.ffmpeg import find_ffmpeg
from tests.extract.inputs import second_of


def test_extract_prints_a_summary_and_writes_a_valid_pack(
    tmp_path: Path,
    video: Path,
    srt_en: Path,
    ass_zh_utf16: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "characters" / "orla"
    args = ["extract", "--video", str(video), "--subtitles", str(srt_en), "--character", "orla"]
    code = main([*args, "--alias", "Keeper", "--out", str(out), "--scene-gap", "20", "--workers", "3"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith(f"created {out} (orla, language en)\n")
    assert "  scenes     1 kept of 1" in printed.out
    assert "lines/s)" in printed.out
    pack = load_pack(out)
    assert (pack.name, pack.aliases, len(pack.scenes), len(pack.screenshots)) == ("orla", ["Keeper"], 1, 2)
    first = json.loads((out / "images.jsonl").read_text("utf-8").splitlines()[0])
    assert second_of(out / first["image"]) == 3

    code = main(
        ["extract", "--episode", str(video), str(ass_zh_utf16), "--character", "orla", "--out", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'orla' never speaks in ")
    assert err.count("\n") == 1
    assert len(load_pack(out).scenes) == 1


def test_mismatched_video_and_subtitles_counts(
    tmp_path: Path, video: Path, srt_en: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["extract", "--video", str(video), "--video", str(video), "--subtitles", str(srt_en)]
    assert main([*args, "--character", "Orla", "--out", str(tmp_path / "orla")]) == 2
    assert "give one --subtitles per --video (got 2 --video, 1 --subtitles)" in capsys.readouterr().err
    assert not (tmp_path / "orla").exists()


def test_without_the_extract_extra_it_says_what_to_install(
    tmp_path: Path, srt_en: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pysubs2", None)  # as if it were not installed
    out = tmp_path / "orla"
    code = main(["extract", "--subtitles", str(srt_en), "--character", "Orla", "--out", str(out)])
    assert code == 2
    expected = 'error: reading subtitle files needs pysubs2: pip install -e ".[extract]"\n'
    assert capsys.readouterr().err == expected
    assert not out.exists()


def test_without_ffmpeg_on_path_or_the_extract_extra_frames_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    monkeypatch.setattr(media, "find_ffmpeg", find_ffmpeg.__wrapped__)  # the function under its cache
    with pytest.raises(
        ExtractError,
        match=r'grabbing frames needs ffmpeg on PATH or imageio-ffmpeg: pip install -e "\.\[extract\]"',
    ):
        media.ffmpeg_exe()
