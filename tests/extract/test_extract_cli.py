"""``python -m bot extract`` through ``bot.cli.main``: no bot.toml needed, one line per error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.engine.packs import load_pack
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
