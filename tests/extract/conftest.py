"""Fixtures for the extraction tests: the generated video, and subtitle files in several encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.extract.inputs import ASS_ZH, SPEAKER_MAP_ZH, SRT_EN, SRT_ZH, make_video


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "ep01.mkv")


@pytest.fixture
def srt_en(tmp_path: Path) -> Path:
    path = tmp_path / "ep01.en.srt"
    path.write_text(SRT_EN, encoding="utf-8")
    return path


@pytest.fixture
def ass_zh_utf16(tmp_path: Path) -> Path:
    """Windows subtitle editors' habit: UTF-16 with a byte-order mark."""
    path = tmp_path / "ep01.zh.ass"
    path.write_bytes(ASS_ZH.replace("\n", "\r\n").encode("utf-16"))
    return path


@pytest.fixture
def srt_zh_gbk(tmp_path: Path) -> Path:
    """Chinese fansubs' habit: GBK, no byte-order mark."""
    path = tmp_path / "ep02.zh.srt"
    path.write_bytes(SRT_ZH.encode("gbk"))
    return path


@pytest.fixture
def speaker_map_zh(tmp_path: Path) -> Path:
    path = tmp_path / "speakers.toml"
    path.write_text(SPEAKER_MAP_ZH, encoding="utf-8")
    return path
