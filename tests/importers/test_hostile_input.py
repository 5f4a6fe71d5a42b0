"""Hostile or broken input is refused with a message naming what and where, and changes nothing.

Every test imports into a characters folder that already serves Orla and checks that its listing,
hidden entries included, is the same afterwards: no half-written pack, no temporary folder left.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PackError
from bot.importers import ImportLimits, import_pack
from tests.importers.samples import (
    WREN,
    listing,
    pack_entries,
    png_bytes,
    shrink_declared_size,
    v3,
    write_bomb_png,
    write_card_png,
    write_json,
    write_text,
    write_zip,
)


def refused(source: Path, characters: Path, **options: Any) -> PackError:
    """Import ``source``, expect a :class:`PackError`, and check ``characters`` did not change."""
    before = listing(characters)
    with pytest.raises(PackError) as caught:
        import_pack(source, characters, **options)
    assert listing(characters) == before
    return caught.value


def test_zip_slip_is_refused(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "slip.zip", {**pack_entries(), "../escaped.txt": "gotcha"})

    error = refused(archive, characters)

    assert str(error) == f"{archive}: entry '../escaped.txt' points outside the archive ('..' in the path)"
    assert not (characters.parent / "escaped.txt").exists()


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "C:\\Windows\\evil.txt"])
def test_absolute_paths_in_a_zip_are_refused(characters: Path, inputs: Path, name: str) -> None:
    archive = write_zip(inputs / "absolute.zip", {**pack_entries(), name: "x"})

    error = refused(archive, characters)

    assert error.reason == f"entry {name!r}: absolute paths are not allowed in an archive"


def test_symlink_entries_are_refused(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "link.zip", pack_entries(), symlinks={"images/avatar.png": "/etc/passwd"})

    error = refused(archive, characters)

    assert error.reason == "entry 'images/avatar.png' is a symbolic link; links are not allowed"


def test_a_symlink_in_a_pack_folder_is_refused(characters: Path, inputs: Path) -> None:
    folder = inputs / "tamsin"
    for name, text in pack_entries().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(str(text))
    os.symlink("/etc/hostname", folder / "scenes" / "002.txt")

    error = refused(folder, characters)

    assert error.path == folder / "scenes" / "002.txt"
    assert "plain files only" in error.reason


def test_too_many_files_are_refused(characters: Path, inputs: Path) -> None:
    scenes = {f"scenes/{n:03d}.txt": "Wren: Aye.\n" for n in range(2, 8)}
    archive = write_zip(inputs / "many.zip", {**pack_entries(), **scenes})

    error = refused(archive, characters, limits=ImportLimits(max_archive_files=5))

    assert error.reason == "the archive holds 8 entries, over the import limit of 5"


def test_the_declared_unpacked_size_is_checked_before_unpacking(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "big.zip", {**pack_entries(), "images/padding.bin": b"\0" * 50_000})

    error = refused(archive, characters, limits=ImportLimits(max_unpacked_bytes=20_000))

    assert error.reason.startswith("the unpacked archive is 50,")
    assert error.reason.endswith("over the import limit of 20,000 bytes")


def test_an_archive_that_lies_about_its_sizes_is_stopped_while_unpacking(
    characters: Path, inputs: Path
) -> None:
    honest = write_zip(inputs / "honest.zip", {**pack_entries(), "images/padding.bin": b"\0" * 50_000})
    lying = inputs / "lying.zip"
    lying.write_bytes(shrink_declared_size(honest.read_bytes(), "images/padding.bin", 10))

    error = refused(lying, characters, limits=ImportLimits(max_unpacked_bytes=20_000))

    assert error.path == lying
    assert error.reason.startswith("entry 'images/padding.bin' cannot be unpacked")


def test_a_zip_entry_over_the_file_limit_is_refused(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "fat.zip", {**pack_entries(), "images/huge.bin": b"\0" * 5000})

    error = refused(archive, characters, limits=ImportLimits(max_file_bytes=4000))

    assert error.reason == "entry 'images/huge.bin' is 5,000 bytes, over the import limit of 4,000 bytes"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(characters: Path, inputs: Path) -> None:
    transcript = write_text(inputs / "long.txt", "Wren: Aye.\nPip: Aye aye.\n" * 100, "utf-8")

    error = refused(transcript, characters, limits=ImportLimits(max_file_bytes=1000))

    assert error.path == transcript
    assert error.reason == "the file is 2,500 bytes, over the import limit of 1,000 bytes"


def test_a_decompression_bomb_card_is_refused_before_decoding(characters: Path, inputs: Path) -> None:
    bomb = write_bomb_png(inputs / "bomb.png", v3(WREN), width=20000, height=20000)

    error = refused(bomb, characters, limits=ImportLimits(max_image_pixels=40_000_000))

    assert error.path == bomb
    assert "too large to decode safely" in error.reason


def test_an_image_over_the_pixel_limit_is_refused(characters: Path, inputs: Path) -> None:
    bomb = write_bomb_png(inputs / "wide.png", v3(WREN), width=9000, height=5000)

    error = refused(bomb, characters)

    assert error.reason == (
        "the image is 9000x5000 = 45,000,000 pixels, over the import limit of 40,000,000 pixels"
    )


def test_an_oversized_screenshot_in_a_pack_zip_is_refused(characters: Path, inputs: Path) -> None:
    frame = write_bomb_png(inputs / "frame.png", v3(WREN), width=800, height=600).read_bytes()
    entries = {**pack_entries(), "images/0001.png": frame, "images/ok.png": png_bytes()}
    archive = write_zip(inputs / "frames.zip", entries)

    error = refused(archive, characters, limits=ImportLimits(max_image_pixels=100_000))

    assert error.path == archive / "images" / "0001.png"
    assert "over the import limit of 100,000 pixels" in error.reason


def test_invalid_json_is_reported_with_line_and_column(characters: Path, inputs: Path) -> None:
    card = write_text(
        inputs / "broken.json",
        '{\n  "name": "Wren",\n  "description": "pilot"\n  "first_mes": ""\n}',
        "utf-8",
    )

    error = refused(card, characters)

    assert error.line == 4
    assert str(error) == f"{card}:4: invalid JSON at line 4, column 3: Expecting ',' delimiter"


def test_invalid_json_in_a_chatharuhi_row_names_the_line(characters: Path, inputs: Path) -> None:
    rows = write_text(inputs / "rows.jsonl", '{"text": "Wren: Aye."}\n{"text": "Pip: Aye aye.",}\n', "utf-8")

    error = refused(rows, characters)

    assert (error.path, error.line) == (rows, 2)
    assert error.reason.startswith("invalid JSON at column")


def test_a_card_without_a_name_is_refused(characters: Path, inputs: Path) -> None:
    nameless = {key: value for key, value in WREN.items() if key != "name"}
    card = write_card_png(inputs / "nameless.png", {"ccv3": v3(nameless)})

    error = refused(card, characters)

    assert str(error) == f"{card}: chunk 'ccv3': the card has no name (data.name is missing or empty)"


def test_a_card_field_of_the_wrong_type_is_named(characters: Path, inputs: Path) -> None:
    book = {"entries": [{"keys": "Ballast", "content": "A parrot.", "insertion_order": "first"}]}
    card = write_json(inputs / "odd.json", v3({**WREN, "character_book": book}))

    error = refused(card, characters)

    assert (
        error.reason == "data.character_book.entries[0].insertion_order must be a whole number, got 'first'"
    )


def test_a_duplicate_id_is_refused_and_the_existing_pack_kept(characters: Path, inputs: Path) -> None:
    card = write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)})
    import_pack(card, characters)

    error = refused(card, characters)
    same_id = refused(write_zip(inputs / "orla.zip", pack_entries("orla/")), characters)

    assert (
        error.reason
        == "a character with id 'wren-calloway' already exists; remove it first or import with another id"
    )
    assert same_id.path == characters / "orla"


def test_a_pack_that_does_not_validate_names_its_file_and_line(characters: Path, inputs: Path) -> None:
    entries = {**pack_entries("tamsin/"), "tamsin/scenes/002.txt": "Wren: Aye.\nthis line has no speaker\n"}
    archive = write_zip(inputs / "tamsin.zip", entries)

    error = refused(archive, characters)

    assert (error.path, error.line) == (archive / "tamsin" / "scenes" / "002.txt", 2)
    assert error.reason.startswith("the pack does not validate: expected 'Speaker:「line」'")


def test_unknown_input_is_refused_naming_the_file(characters: Path, inputs: Path) -> None:
    movie = write_text(inputs / "episode.mkv", "not really a video", "utf-8")
    not_a_pack = write_zip(inputs / "photos.zip", {"holiday/beach.jpg": png_bytes()})

    assert refused(movie, characters).path == movie
    assert "neither card.json" in refused(not_a_pack, characters).reason


def test_a_zip_that_is_not_a_zip_is_refused(characters: Path, inputs: Path) -> None:
    fake = write_text(inputs / "pack.zip", "PK but not really", "utf-8")

    assert "not a readable zip archive" in refused(fake, characters).reason


def test_an_encrypted_entry_is_refused(characters: Path, inputs: Path) -> None:
    archive = write_zip(inputs / "locked.zip", pack_entries())
    data = bytearray(archive.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at != -1:
            data[at + flag_at] |= 0x1
            at = data.find(signature, at + 4)
    archive.write_bytes(bytes(data))
    assert zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x1

    error = refused(archive, characters)

    assert error.reason == "entry 'character.toml' is encrypted"


def test_a_png_without_a_card_is_refused(characters: Path, inputs: Path) -> None:
    plain = inputs / "holiday.png"
    plain.write_bytes(png_bytes())

    error = refused(plain, characters)

    assert error.reason == "the PNG holds no character card (no 'ccv3' or 'chara' text chunk)"


def test_a_refused_import_into_a_new_characters_folder_leaves_no_folder(tmp_path: Path, inputs: Path) -> None:
    nameless = write_json(inputs / "nameless.json", {"description": "Nobody in particular."})

    with pytest.raises(PackError, match="the card has no name"):
        import_pack(nameless, tmp_path / "fresh" / "characters")

    assert not (tmp_path / "fresh" / "characters").exists()
