"""Voice messages as a QQ group hears them: a real bot process, a real OneBot v11 client, and a real
OpenAI-compatible server that both answers and speaks (its speech is a WAV the bot encodes to MP3)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from bot.ffmpeg import find_ffmpeg
from tests.support.bot_process import free_port
from tests.support.onebot_client import ApiCall
from tests.support.openai_server import FakeOpenAIServer, speech_duration_s
from tests.test_e2e import Harness, model_server, reply_in, say, shared_data

__all__ = ["model_server", "shared_data"]  # fixtures shared with the OneBot E2E tests

GROUP, OTHER, DOWN = 1301, 1302, 1303


def record_seconds(call: ApiCall) -> float:
    """The duration of the call's ``record`` segment, decoded by ffmpeg from its base64."""
    (segment,) = call.segments()
    assert segment["type"] == "record"
    file = str(segment["data"]["file"])
    assert file.startswith("base64://")
    exe = find_ffmpeg()
    assert exe is not None
    pcm = subprocess.run(
        [exe, "-loglevel", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        input=base64.b64decode(file.removeprefix("base64://")),
        capture_output=True,
        check=True,
    ).stdout
    return len(pcm) / 2 / 16000


async def test_a_group_hears_its_character_and_a_dead_engine_leaves_the_text(
    tmp_path: Path, shared_data: Path, model_server: FakeOpenAIServer
) -> None:
    harness = Harness(
        tmp_path,
        shared_data,
        {"base_url": model_server.base_url, "model": "fake-model"},
        voice={"cooldown_s": 0, "openai": {"base_url": model_server.base_url}},
    )
    client = await harness.start()
    try:
        model_server.reply_text("Orla: The lamp is lit.")
        await say(client, GROUP, "/voice on", at_bot=False, role="admin")
        assert (await reply_in(client, GROUP)).text().startswith("Voice on: replies come as text")

        await say(client, GROUP, "Is the lamp lit?")
        text = await reply_in(client, GROUP)
        assert text.segment_types() == ["reply", "text"]
        assert text.text() == "The lamp is lit."
        voice = await reply_in(client, GROUP)
        assert abs(record_seconds(voice) - speech_duration_s("The lamp is lit.")) < 0.15
        assert model_server.speech_requests[-1].input == "The lamp is lit."

        await say(client, GROUP, "/voice off", at_bot=False, role="admin")
        assert (await reply_in(client, GROUP)).text() == "Voice off for this chat: text only."
        await say(client, GROUP, "And the boat?", user=502)
        assert (await reply_in(client, GROUP)).segment_types() == ["reply", "text"]

        await say(client, OTHER, "/voice only", at_bot=False, role="admin")
        await reply_in(client, OTHER)
        await say(client, OTHER, "Lamp?")
        assert record_seconds(await reply_in(client, OTHER)) > 0.3, "the voice alone"
        assert len(model_server.speech_requests) == 1, "the same words in the same voice come from the cache"
    finally:
        await client.close()
        harness.stop()

    down = Harness(
        tmp_path / "down",
        shared_data,
        {"base_url": model_server.base_url, "model": "fake-model"},
        voice={"mode": "only", "timeout_s": 5, "openai": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}},
    )
    client = await down.start()
    try:
        await say(client, DOWN, "Is the lamp lit?")
        text = await reply_in(client, DOWN)
        assert text.segment_types() == ["reply", "text"], "no voice: the text goes out"
        assert text.text() == "The lamp is lit."
        assert down.process is not None
        await down.process.wait_for_log_async("text only, no voice", timeout=5)
    finally:
        await client.close()
        down.stop()
