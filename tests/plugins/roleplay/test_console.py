"""The console as a person at the keyboard meets it: the bot started in a terminal (a pseudo-terminal
here), a message typed, each character's reply in a bubble under its own name (its voice as the
file's path), and Ctrl+Q ending the whole bot, its port freed."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.packs import write_pack, write_xiaoman
from tests.support.bot_process import free_port, write_bot_toml
from tests.support.openai_server import FakeOpenAIServer

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


class Terminal:
    """A process on a pseudo-terminal; :meth:`screen` is everything it drew, escapes removed."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self._master, follower = pty.openpty()
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "45"}
        self.process = subprocess.Popen(
            argv, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
        )
        os.close(follower)
        self._drawn = bytearray()

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self._master], [], [], min(left, 0.1))
            if ready:
                try:
                    self._drawn += os.read(self._master, 65536)
                except OSError:  # the process ended and closed the terminal
                    return

    def screen(self) -> str:
        return ESCAPES.sub("", self._drawn.decode("utf-8", errors="replace"))

    def wait_for(self, text: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read(0.2)
            if text in self.screen():
                return True
        return False

    def type(self, keys: str) -> None:
        for key in keys:  # one key at a time, as a person types
            os.write(self._master, key.encode())
            self.read(0.02)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self._master)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("quit_key", ["\x11", "\x03"], ids=["ctrl-q", "ctrl-c"])
def test_each_character_speaks_under_its_name_and_ctrl_q_or_ctrl_c_ends_the_bot(
    tmp_path: Path, quit_key: str
) -> None:
    characters = tmp_path / "characters"
    write_pack(characters, persona="You are Orla Finch, keeper of Skerrow Light.")
    write_xiaoman(characters)
    port = free_port()
    with FakeOpenAIServer() as model:
        model.reply_text("Aye, the lamp is lit.")
        config = write_bot_toml(
            tmp_path / "bot.toml",
            {"platforms": {"onebot": {"access_token": "t"}, "console": {"enabled": True}}},
            server={"host": "127.0.0.1", "port": port},
            llm={"base_url": model.base_url, "model": "fake-model"},
            embedding={"model": "hashing"},
            storage={"url": "sqlite+aiosqlite:///db/bot.sqlite3", "data_dir": str(tmp_path / "data")},
            characters={"dir": "characters", "default": "orla"},
            voice={"mode": "on", "openai": {"base_url": model.base_url}},
        )
        terminal = Terminal([sys.executable, "-m", "bot", "--config", str(config)], tmp_path)
        try:
            deadline = time.monotonic() + 90
            while not port_open(port) and time.monotonic() < deadline:
                terminal.read(0.5)
            assert port_open(port), terminal.screen()[-2000:]
            terminal.read(2)
            terminal.type("is the lamp lit?\r")  # the message box has the cursor from the start
            assert terminal.wait_for("Aye, the lamp is lit.", 30), terminal.screen()[-3000:]
            # NOTE: the terminal is redrawn in pieces, so the name may come in two ("🎭 O", "rla Finch");
            # nothing else on the screen says "Finch" (the bot's own bubbles read "Bot").
            assert terminal.wait_for("Finch", 10), "the reply's bubble names its character"
            assert terminal.wait_for("[voice: ", 20), "a voice shows as its file"

            terminal.type(quit_key)  # with the cursor in the message box, where Ctrl+C would copy
            terminal.read(0.5)
            terminal.process.wait(timeout=20)
            assert not port_open(port), "the bot's port is freed"
        finally:
            terminal.close()
