"""Our own packs move between bots as folders or zips; packs are replaced and removed whole."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from bot.engine.packs import load_pack
from bot.errors import PackError
from bot.importers import export_zip, import_pack, remove_pack
from tests.importers.samples import listing, pack_entries, write_zip
from tests.packs import ORLA_CAPTIONS, write_pack


def test_a_pack_folder_is_copied_under_its_own_id_without_hidden_files(tmp_path: Path, inputs: Path) -> None:
    source = write_pack(inputs, screenshots=ORLA_CAPTIONS)
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    lines: list[str] = []

    result = import_pack(source, tmp_path / "served", progress=lines.append)

    assert result.format == "pack-folder"
    assert result.pack.id == "orla"
    assert len(result.pack.screenshots) == 2
    assert not (tmp_path / "served" / "orla" / ".git").exists()
    assert "1 hidden file or folder left out" in result.notes
    assert lines[0] == "orla: pack-folder"
    assert lines[-1] == f"installed {tmp_path / 'served' / 'orla'}"


def test_export_zip_and_import_it_elsewhere_gives_the_same_pack(characters: Path, tmp_path: Path) -> None:
    pack = load_pack(characters / "orla")
    data = export_zip(pack)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "orla/character.toml" in names
    assert all(name.startswith("orla/") for name in names)
    archive = tmp_path / "orla-export.zip"
    archive.write_bytes(data)

    result = import_pack(archive, tmp_path / "other-bot")

    assert result.format == "pack-zip"
    assert result.pack.id == "orla"
    assert result.pack.content_hash == pack.content_hash


def test_a_zip_with_the_pack_at_its_root_takes_its_id_from_the_name(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "download (3).zip", pack_entries())

    result = import_pack(archive, characters)

    assert result.pack.id == "tamsin-reed"
    assert result.pack.aliases == ["Tam"]


def test_replace_swaps_the_whole_pack(characters: Path, inputs: Path) -> None:
    (characters / "orla" / "notes.md").write_text("old notes")
    archive = write_zip(inputs / "orla.zip", pack_entries("orla/"))

    result = import_pack(archive, characters, replace=True)

    assert result.pack.name == "Tamsin Reed"
    assert not (characters / "orla" / "notes.md").exists()
    assert [name for name in listing(characters) if name.startswith(".")] == []


def test_remove_pack_deletes_the_folder_and_refuses_what_is_not_there(characters: Path) -> None:
    remove_pack(characters, "orla")

    assert listing(characters) == []
    with pytest.raises(PackError, match="no character with id 'orla' to remove"):
        remove_pack(characters, "orla")
    with pytest.raises(PackError, match="is not a pack id"):
        remove_pack(characters, "../orla")
