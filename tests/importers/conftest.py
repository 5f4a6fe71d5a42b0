"""Fixtures for the importer tests: a characters folder that already serves a pack, and a folder of inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packs import ORLA_CAPTIONS, write_pack


@pytest.fixture
def characters(tmp_path: Path) -> Path:
    """``characters/`` holding Orla, as a running bot's would: imports must leave her untouched."""
    root = tmp_path / "characters"
    write_pack(root, screenshots=ORLA_CAPTIONS)
    return root


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    return folder
