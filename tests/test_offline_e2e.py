"""The newcomer's path: no key and no server, so the packaged default model answers, over OneBot.

The bot starts with the shipped characters and nothing but a OneBot token configured, as after the
README's first command. Its model loads in the background, so the first message may hear the
character's "one moment" line first; then Orla answers in English and 苏小满, called by name, in
Chinese, each in character (the reply check passed: no apology, no deflection).
"""

from __future__ import annotations

import os
import signal
import tomllib
from pathlib import Path

from bot.engine.guard import deflection_lines
from bot.engine.responder import DEFAULT_APOLOGY
from bot.flow.waiting import DEFAULT_LINES
from tests.support.bot_process import REPO_ROOT, BotProcess, free_port, write_bot_toml
from tests.support.onebot_client import OneBotClient

TOKEN = "offline-secret"


def canned_lines(pack_id: str) -> set[str]:
    """What a character says without the model: apology, deflections, one-moment lines."""
    settings = tomllib.loads((REPO_ROOT / "characters" / pack_id / "character.toml").read_text("utf-8"))
    language = settings.get("language", "en")
    return {
        settings.get("apology", ""),
        DEFAULT_APOLOGY[language],
        *deflection_lines(settings["name"], language, settings.get("deflection", [])),
        *settings.get("one_moment", []),
        *DEFAULT_LINES[language],
    }


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


async def test_the_packaged_model_answers_in_character_in_english_and_chinese(tmp_path: Path) -> None:
    port = free_port()
    config = write_bot_toml(
        tmp_path / "bot.toml",
        {"platforms": {"onebot": {"access_token": TOKEN}, "console": {"enabled": False}}},
        server={"host": "127.0.0.1", "port": port},
        storage={"url": "sqlite+aiosqlite:///bot.sqlite3", "data_dir": "data"},
        characters={"dir": str(REPO_ROOT / "characters"), "default": "orla"},
    )
    env = {name: value for name, value in os.environ.items() if not name.endswith("API_KEY")}
    process = BotProcess(config, cwd=tmp_path, env=env).start()
    try:
        await process.wait_ready_async("127.0.0.1", port, timeout=120)
        client = await OneBotClient.connect(
            f"ws://127.0.0.1:{port}/onebot/v11/ws", self_id=10_000, access_token=TOKEN, timeout=30
        )
        try:
            hello = " Hello Orla! What do you do all day at the lighthouse?"
            await client.send_group_message(3001, 601, hello, at_bot=True, nickname="Sam")
            english = await client.wait_for_call(
                "send_group_msg", lambda call: call.text() not in canned_lines("orla"), timeout=180
            )
            await client.send_group_message(3001, 602, "小满，下雨天喝什么茶好？", nickname="小林")
            chinese = await client.wait_for_call(
                "send_group_msg",
                lambda call: has_chinese(call.text()) and call.text() not in canned_lines("xiaoman"),
                timeout=120,
            )
            said = [call.text() for call in client.calls if call.action == "send_group_msg"]
        finally:
            await client.close()
        waiting = [text for text in said if text in canned_lines("orla")]
        assert len(waiting) <= 1, "the one-moment line is said once"
        assert said.index(english.text()) == len(waiting), "and only before the answer"
        assert process.stop(timeout=20) in (0, -signal.SIGTERM), process.tail(40)
    finally:
        process.stop()
    assert english.text().isascii() or not has_chinese(english.text()), english.text()
    assert len(english.text().split()) >= 3, english.text()
    assert has_chinese(chinese.text()), chinese.text()
    log = process.log_text()
    assert "local model qwen2.5-1.5b (local) loaded" in log
    print("Orla:", english.text(), "\n苏小满:", chinese.text())
