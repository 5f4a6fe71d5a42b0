"""``scripts/serve_gguf.py``: a packaged GGUF served OpenAI-compatibly on loopback, answering a pack
whose ``[llm]`` points at it, in both styles, the way the training docs run the loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import LLMConfig, PromptConfig
from bot.engine.local_weights import PACKAGED_MODELS, join
from bot.engine.model import EchoChatModel
from bot.engine.pack_models import PackModels
from bot.engine.packs import load_pack
from bot.engine.prompt import PromptBuilder, TokenCounter, Turn
from tests.packs import write_pack
from tests.support.bot_process import free_port

ROOT = Path(__file__).resolve().parents[1]
SMALL = "qwen2.5-0.5b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The packaged 0.5B, joined into a temp folder and served; yields the base URL."""
    models = tmp_path_factory.mktemp("models")
    path = join(PACKAGED_MODELS[SMALL], models)
    port = free_port()
    log = models / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "scripts/serve_gguf.py",
                str(path),
                "--port",
                str(port),
                "--alias",
                "orla-small",
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve_gguf.py did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    yield base_url
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("style", ["chat", "completion"])
async def test_a_pack_answers_through_a_served_gguf(server: str, tmp_path: Path, style: str) -> None:
    folder = write_pack(
        tmp_path, extra_toml=f'[llm]\nmodel = "orla-small"\nbase_url = "{server}"\nstyle = "{style}"\n'
    )
    pack = load_pack(folder)
    config = LLMConfig(timeout_s=60, max_retries=0, max_tokens=24, temperature=0.0)
    models = PackModels(EchoChatModel(), config)
    own = models.own(pack)
    assert own is not None
    prompt = PromptBuilder(own.budgets(PromptConfig()), TokenCounter.default()).build(
        pack, pack.scenes, [], Turn("Tam", "Is a storm coming tonight?")
    )

    try:
        completion = await own.complete(prompt)
    finally:
        await models.aclose()

    assert completion.text.strip()
    assert "heard" not in completion.text, "the served model answered, not the bot's"
    assert completion.model == "orla-small"
    assert (completion.completion_tokens or 0) > 0
