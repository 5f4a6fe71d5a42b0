from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.packs import write_pack


def test_a_bad_config_stops_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.toml"
    config.write_text("[llm]\ntimeout_s = 'soon'\n", encoding="utf-8")
    assert main(["--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert error == f"error: {config}: [llm] timeout_s: Input should be a valid number, " + (
        "unable to parse string as a number (got 'soon')\n"
    )


def test_an_empty_characters_folder_stops_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "characters").mkdir()
    (tmp_path / "bot.toml").write_text("", encoding="utf-8")
    assert main(["--config", str(tmp_path / "bot.toml")]) == 2
    assert "[characters] dir: no usable character pack" in capsys.readouterr().err


def test_validate_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_pack(tmp_path / "characters")
    bad = write_pack(tmp_path / "characters", "bad")
    (bad / "scenes" / "002.txt").write_text("Orla: fine\nwhat is this\n", encoding="utf-8")
    (tmp_path / "bot.toml").write_text("", encoding="utf-8")
    assert main(["--config", str(tmp_path / "bot.toml"), "characters", "validate"]) == 1
    out = capsys.readouterr().out
    assert f"✗ {bad / 'scenes' / '002.txt'}:2: expected 'Speaker:" in out
    assert f"✓ {good}: 3 scenes, 0 screenshots" in out


def test_list_the_shipped_characters(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).parents[1]
    assert main(["--config", str(root / "bot.toml"), "characters", "list"]) == 0
    out = capsys.readouterr().out
    assert "orla" in out
    assert "xiaoman" in out


def test_db_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bot.toml").write_text("", encoding="utf-8")
    assert main(["--config", str(tmp_path / "bot.toml"), "db", "upgrade"]) == 0
    assert (tmp_path / "data" / "bot.sqlite3").exists()
    assert capsys.readouterr().out == "database is up to date\n"


def test_discord_without_a_token_stops_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_DISCORD_TOKEN", raising=False)
    write_pack(tmp_path / "characters")
    config = tmp_path / "bot.toml"
    config.write_text(
        '[platforms.discord]\nenabled = true\ntoken_env = "MY_DISCORD_TOKEN"\n', encoding="utf-8"
    )
    assert main(["--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        "error: [platforms.discord] is enabled but the environment variable MY_DISCORD_TOKEN is empty: "
        "put the bot token there (README, 'Connect Discord')\n"
    )


def test_import_export_and_remove_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.importers.samples import WREN, v3, write_card_png

    (tmp_path / "characters").mkdir()
    config = tmp_path / "bot.toml"
    config.write_text("", encoding="utf-8")
    card = write_card_png(tmp_path / "wren.png", {"ccv3": v3(WREN)})
    base = ["--config", str(config), "characters"]

    assert main([*base, "import", card.as_uri(), "--id", "wren"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("imported wren (Wren")
    assert "indexing wren: 100%" in printed.err, "a progress bar while embedding"
    assert "2/2" in printed.err
    assert list((tmp_path / "data" / "embeddings").rglob("wren-*.npy")), "the bot starts with the cache warm"
    assert main([*base, "import", str(card), "--id", "wren"]) == 2
    assert "a character with id 'wren' already exists" in capsys.readouterr().err

    out = tmp_path / "wren-card.png"
    assert main([*base, "export", "wren", "--as", "card", "--out", str(out)]) == 0
    assert main([*base, "import", str(out), "--id", "wren2", "--no-index"]) == 0
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert "wren2" in listed

    assert main([*base, "remove", "wren2"]) == 0
    assert sorted(path.name for path in (tmp_path / "characters").iterdir()) == ["wren"]
