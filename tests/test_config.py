from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, parse_config
from bot.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_resolve_paths_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.characters_dir == tmp_path / "characters"
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/bot.sqlite3"
    assert config.data_dir == tmp_path / "data"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[llm]\ntimeout_s = 'soon'\n", "[llm] timeout_s: Input should be a valid number"),
        ("[llm]\ntimeout = 5\n", "[llm] timeout: unknown key"),
        ("[llm]\nreply_deadline_s = 0\n", "[llm] reply_deadline_s: Input should be greater than 0"),
        ("[storage]\nurl = 'x'\n[colour]\nx = 1\n", "colour: unknown key"),
        ("[server]\nport = 70000\n", "[server] port: Input should be less than or equal to 65535"),
        (
            "[admins]\nsuperusers = ['10001']\n",
            "[admins] superusers: '10001' must look like 'platform:user_id'",
        ),
        (
            "[admins]\ncatalog_managers = ['onebot:']\n",
            "[admins] catalog_managers: 'onebot:' must look like 'platform:user_id'",
        ),
        (
            "[platforms.onebot]\nenabled = 'maybe'\n",
            "[platforms.onebot] enabled: Input should be a valid boolean",
        ),
        ("[llm\n", "invalid TOML"),
    ],
)
def test_a_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "bot.toml"))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_backend_auto_picks_local_without_key_or_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    config = load_config(write(tmp_path, "[llm]\napi_key_env = 'MY_KEY'\n"))
    assert config.llm.resolved_backend() == "local"
    monkeypatch.setenv("MY_KEY", "sk-test")
    assert config.llm.resolved_backend() == "openai"
    with_url = load_config(
        write(tmp_path, "[llm]\napi_key_env = 'MY_KEY'\nbase_url = 'http://127.0.0.1:9/v1'\n")
    )
    monkeypatch.delenv("MY_KEY")
    assert with_url.llm.resolved_backend() == "openai"


def test_shipped_bot_toml_is_valid() -> None:
    config = load_config(Path(__file__).parents[1] / "bot.toml")
    assert config.characters.default in {path.name for path in config.characters_dir.iterdir()}


def test_the_database_url_may_come_from_an_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(
        {"storage": {"url_env": "BOT_DATABASE_URL", "url": "sqlite+aiosqlite:///data/bot.sqlite3"}},
        source=tmp_path / "bot.toml",
    )
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.sqlite3'}", "unset: url"
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+asyncpg://bot:secret@postgres/bot")
    assert config.database_url == "postgresql+asyncpg://bot:secret@postgres/bot"
