"""A character with its own model, as a QQ group meets it: a real bot process, a real OneBot v11
client, the bot's model server and the character's own; when the character's server goes away the
bot's model answers for it, and the log says so once."""

from __future__ import annotations

from pathlib import Path

from tests.packs import write_pack
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e import Harness, model_server, reply_in, say, shared_data

__all__ = ["model_server", "shared_data"]  # fixtures shared with the OneBot E2E tests

WREN_GROUP, ORLA_GROUP = 1401, 1402
FELL_BACK = "wren's own model wren-7b failed"


async def test_a_character_answers_through_its_own_model_and_falls_back_when_it_is_gone(
    tmp_path: Path, shared_data: Path, model_server: FakeOpenAIServer
) -> None:
    own = FakeOpenAIServer(model="wren-7b").start()

    def wren(characters: Path) -> None:
        write_pack(
            characters,
            "wren",
            name="Wren",
            aliases=("Wren",),
            persona="You are Wren, a ferry pilot. Speak briefly.",
            scenes={"001": ["Pip: Wren, is the ferry running?", "Wren: When the fog lifts."]},
            extra_toml=f'[llm]\nmodel = "wren-7b"\nbase_url = "{own.base_url}"\nmax_retries = 0\n',
        )

    harness = Harness(
        tmp_path, shared_data, {"base_url": model_server.base_url, "model": "fake-model"}, extra_pack=wren
    )
    try:
        client = await harness.start()
        try:
            await say(client, WREN_GROUP, "/switch wren", at_bot=False)
            assert (await reply_in(client, WREN_GROUP)).text() == "[Wren] Hello from Wren."
            await say(client, WREN_GROUP, "/who", at_bot=False)
            who = (await reply_in(client, WREN_GROUP)).text()
            assert f"It answers through its own model wren-7b at {own.base_url}" in who

            own.reply_text("Not before noon, Pip.")
            await say(client, WREN_GROUP, "Is the ferry running?")
            assert (await reply_in(client, WREN_GROUP)).text() == "Not before noon, Pip."
            assert [request.model for request in own.requests] == ["wren-7b"]
            assert model_server.requests == []

            await say(client, ORLA_GROUP, "Is the lamp lit?")
            await reply_in(client, ORLA_GROUP)
            assert [request.model for request in model_server.requests] == ["fake-model"]

            own.stop()
            model_server.reply_text("The fog is thick today.")
            for question in ("And tomorrow?", "And the day after?"):
                await say(client, WREN_GROUP, question)
                assert (await reply_in(client, WREN_GROUP)).text() == "The fog is thick today."
            assert [request.model for request in model_server.requests][1:] == ["fake-model", "fake-model"]
            assert harness.process is not None
            await harness.process.wait_for_log_async(FELL_BACK, timeout=5)
            assert harness.process.log_text().count(FELL_BACK) == 1, "once per pack, not per message"
        finally:
            await client.close()
    finally:
        harness.stop()
        own.stop()
