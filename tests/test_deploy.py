"""The deployment files: the compose file's services fit together and the bot's config in it loads.

``docker compose config`` validates the file where Docker's compose plugin is installed; without it
the same facts are read from the YAML here, so a broken edit still fails the suite.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import load_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    "POSTGRES_PASSWORD": "pw",
    "ONEBOT_ACCESS_TOKEN": "token",
    "QQ_ACCOUNT": "10001",
}


@pytest.fixture
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_the_bot_waits_for_postgresql_and_napcat_dials_the_bots_onebot_endpoint(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert {"postgres", "bot", "napcat", "vllm", "bot-2", "napcat-2"} <= set(services)
    bot = services["bot"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["environment"]["BOT_DATABASE_URL"].startswith("postgresql+asyncpg://bot:")
    assert "@postgres:5432/bot" in bot["environment"]["BOT_DATABASE_URL"]
    assert services["napcat"]["environment"]["WS_URLS"] == '["ws://bot:8080/onebot/v11/ws"]'
    assert services["vllm"]["profiles"] == ["gpu"]
    assert services["bot-2"]["profiles"] == ["second-account"]


def test_the_compose_config_file_loads_and_points_at_the_shared_database(
    monkeypatch: pytest.MonkeyPatch, compose: dict[str, Any]
) -> None:
    url = "postgresql+asyncpg://bot:pw@postgres:5432/bot"
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    config = load_config(ROOT / "deploy" / "bot.toml")
    assert config.database_url == url
    assert config.server.port == 8080
    assert config.platforms.onebot.access_token_env == "ONEBOT_ACCESS_TOKEN"
    mounted = compose["services"]["bot"]["volumes"]
    assert "./deploy/bot.toml:/config/bot.toml:ro" in mounted


def test_the_image_installs_cpu_torch_first_and_starts_the_bot() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    torch = dockerfile.index("torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert torch < dockerfile.index("RUN pip install .")
    assert 'CMD ["python", "-m", "bot", "--config", "/config/bot.toml"]' in dockerfile


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed here")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("docker has no compose plugin here")
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "gpu", "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
