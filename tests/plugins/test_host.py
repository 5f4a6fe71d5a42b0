"""The start refuses a OneBot way in that the network could use without credentials."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, load_config, parse_config
from bot.errors import ConfigError
from plugins.host import RedactTokens, check_onebot_access, is_loopback

ROOT = Path(__file__).resolve().parents[2]


def config(host: str, **onebot: Any) -> BotConfig:
    return parse_config({"server": {"host": host}, "platforms": {"onebot": onebot}}, source=Path("bot.toml"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_addresses_are_recognised(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "bot.example.org", ""])
def test_other_addresses_are_reachable_from_elsewhere(host: str) -> None:
    assert not is_loopback(host)


def test_an_empty_token_on_a_reachable_address_stops_the_start_naming_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reachable = r"^\[platforms\.onebot\] access_token is empty .*\[server\] host = '0\.0\.0\.0'"
    with pytest.raises(ConfigError, match=reachable):
        check_onebot_access(config("0.0.0.0"))
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="access_token_env names an unset variable"):
        check_onebot_access(config("0.0.0.0", access_token_env="NO_SUCH_TOKEN"))
    check_onebot_access(config("0.0.0.0", access_token="t0ken"))
    check_onebot_access(config("0.0.0.0", enabled=False))


def test_an_empty_token_on_loopback_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="plugins.host"):
        check_onebot_access(config("127.0.0.1"))
    assert [record.getMessage() for record in caplog.records] == [
        "[platforms.onebot] access_token is empty: any program on this machine can connect as a OneBot "
        "account; set access_token_env (or access_token) to require a token"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="plugins.host"):
        check_onebot_access(config("127.0.0.1", access_token="t0ken"))
    assert not caplog.records


def test_http_post_needs_a_token_or_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    neither = r"^\[platforms\.onebot\] http_post is on but access_token .* secret"
    with pytest.raises(ConfigError, match=neither):
        check_onebot_access(config("127.0.0.1", http_post=True))
    check_onebot_access(config("127.0.0.1", http_post=True, secret="s3cret"))
    monkeypatch.setenv("ONEBOT_SECRET", "s3cret")
    check_onebot_access(config("127.0.0.1", http_post=True, secret_env="ONEBOT_SECRET"))
    check_onebot_access(config("0.0.0.0", http_post=True, access_token="t0ken"))
    with pytest.raises(ConfigError, match="access_token is empty"):
        check_onebot_access(config("0.0.0.0", http_post=True, secret="s3cret"))


def test_the_compose_config_starts_only_with_its_token_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEBOT_ACCESS_TOKEN", raising=False)
    deployed = load_config(ROOT / "deploy" / "bot.toml")
    assert deployed.server.host == "0.0.0.0"
    with pytest.raises(ConfigError, match="access_token_env"):
        check_onebot_access(deployed)
    monkeypatch.setenv("ONEBOT_ACCESS_TOKEN", "from-the-env-file")
    check_onebot_access(deployed)


def test_a_token_in_a_logged_request_line_is_hidden() -> None:
    line = ("127.0.0.1:5000", "POST", "/onebot/v11/http?x=1&access_token=s3cret&y=2", "1.1", 204)
    form = '%s - "%s %s HTTP/%s" %d'
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, form, line, None)
    assert RedactTokens().filter(record)
    hidden = '127.0.0.1:5000 - "POST /onebot/v11/http?x=1&access_token=***&y=2 HTTP/1.1" 204'
    assert record.getMessage() == hidden
