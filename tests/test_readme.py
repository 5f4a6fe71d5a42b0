"""The README's two commands are the ones the project really uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_shows_exactly_two_commands() -> None:
    run, test = readme_commands()
    assert run.endswith(".venv/bin/python -m bot")
    assert "pytest" in test
    assert "ruff check" in test
    assert "mypy" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = readme_commands()
    lines = [
        line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert test in lines
    assert all(line in {"set -euo pipefail", 'cd "$(dirname "$0")/.."', test} for line in lines)


def test_shipped_config_keeps_the_console_and_onebot_on() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "bot.toml").read_text(encoding="utf-8"))
    assert config["platforms"]["console"]["enabled"] is True
    assert config["platforms"]["onebot"]["enabled"] is True
    assert "base_url" not in config["llm"], "no key and no base_url: the offline model answers"
