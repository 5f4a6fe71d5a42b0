"""Tests for :mod:`tests.support.bot_process`, using small real child processes."""

from __future__ import annotations

import math
import re
import signal
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.support.bot_process import (
    REPO_ROOT,
    BotExitedError,
    BotProcess,
    dumps_toml,
    free_port,
    write_bot_toml,
)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _http_server(port: int, directory: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(directory),
    ]


def test_http_server_ready_then_stopped(tmp_path: Path) -> None:
    port = free_port()
    argv = _http_server(port, tmp_path)
    (tmp_path / "hello.txt").write_text("hi")
    with BotProcess(cwd=tmp_path, argv=argv, log_path=tmp_path / "server.log") as proc:
        proc.wait_ready("127.0.0.1", port, timeout=15)
        assert proc.running
        assert proc.returncode is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=5) as response:
            assert response.read() == b"hi"
        proc.wait_for_log("GET /hello.txt", timeout=5)
        assert "Serving HTTP" in proc.tail(5)
    assert proc.returncode == -signal.SIGTERM
    assert not proc.running


@pytest.mark.asyncio
async def test_async_waits(tmp_path: Path) -> None:
    port = free_port()
    argv = _http_server(port, tmp_path)
    with BotProcess(cwd=tmp_path, argv=argv) as proc:
        await proc.wait_ready_async("127.0.0.1", port, timeout=15)
        match = await proc.wait_for_log_async(re.compile(r"port (\d+)"), timeout=5)
        assert match.group(1) == str(port)
    assert proc.log_path == tmp_path / "bot-process.log"


def test_early_exit_fails_fast_with_log_tail(tmp_path: Path) -> None:
    proc = BotProcess(cwd=tmp_path, argv=_python("import sys; print('config is broken'); sys.exit(3)"))
    with proc, pytest.raises(BotExitedError, match="config is broken") as excinfo:
        proc.wait_ready("127.0.0.1", free_port(), timeout=15)
    assert "exited with 3" in str(excinfo.value)
    assert proc.returncode == 3
    assert proc.stop() == 3


def test_wait_ready_timeout_includes_log(tmp_path: Path) -> None:
    code = "import time; print('starting slowly', flush=True); time.sleep(30)"
    with BotProcess(cwd=tmp_path, argv=_python(code)) as proc:
        proc.wait_for_log("starting slowly", timeout=10)
        with pytest.raises(TimeoutError, match="starting slowly"):
            proc.wait_ready("127.0.0.1", free_port(), timeout=0.3)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring sigterm', flush=True)\n"
        "time.sleep(30)\n"
    )
    with BotProcess(cwd=tmp_path, argv=_python(code)) as proc:
        proc.wait_for_log("ignoring sigterm", timeout=10)
        assert proc.stop(timeout=0.3) == -signal.SIGKILL


def test_kill_and_environment(tmp_path: Path) -> None:
    code = (
        "import os, sys, time\n"
        "print('cwd', os.getcwd())\n"
        "print('extra', os.environ['EXTRA_FLAG'])\n"
        "print('path0', os.environ['PYTHONPATH'].split(os.pathsep)[0])\n"
        "print('done', flush=True)\n"
        "time.sleep(30)\n"
    )
    with BotProcess(cwd=tmp_path, argv=_python(code), extra_env={"EXTRA_FLAG": "yes"}) as proc:
        proc.wait_for_log("done", timeout=10)
        log = proc.log_text()
        assert f"cwd {tmp_path}" in log
        assert "extra yes" in log
        assert f"path0 {REPO_ROOT}" in log
        assert proc.kill() == -signal.SIGKILL


def test_default_argv_runs_the_bot_module(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    proc = BotProcess(config, cwd=tmp_path)
    assert proc.argv == [sys.executable, "-m", "bot", "--config", str(config)]
    assert proc.log_path == tmp_path / "bot-process.log"
    assert proc.stop() is None
    with pytest.raises(ValueError, match="config_path"):
        BotProcess(cwd=tmp_path)


def test_write_bot_toml_round_trips(tmp_path: Path) -> None:
    path = write_bot_toml(
        tmp_path / "conf" / "bot.toml",
        {"top-level key": "dashed"},
        name='quote " backslash \\ newline \n tab \t bell \x07 unicode 角色',
        port=8080,
        ratio=0.25,
        big=1e20,
        infinite=math.inf,
        enabled=True,
        skipped=None,
        tags=["a", "b c"],
        numbers=[1, 2.5, False],
        onebot={"access_token": "tok", "nested": {"deep": {"x": 1}}, "empty": {}},
        llm={"base_url": "http://127.0.0.1:1/v1", "timeout": 2.5, "headers": {"X-Test": "1"}},
        characters=[
            {"name": "Alice", "traits": ["kind"], "style": {"tone": "warm"}},
            {"name": "Bob", "inline": [{"a": 1}]},
        ],
        path=tmp_path,
    )
    loaded = tomllib.loads(path.read_text(encoding="utf-8"))
    assert loaded["name"] == 'quote " backslash \\ newline \n tab \t bell \x07 unicode 角色'
    assert loaded["top-level key"] == "dashed"
    assert (loaded["port"], loaded["ratio"], loaded["big"], loaded["enabled"]) == (8080, 0.25, 1e20, True)
    assert loaded["infinite"] == math.inf
    assert "skipped" not in loaded
    assert loaded["tags"] == ["a", "b c"]
    assert loaded["numbers"] == [1, 2.5, False]
    assert loaded["onebot"] == {"access_token": "tok", "nested": {"deep": {"x": 1}}, "empty": {}}
    assert loaded["llm"]["headers"] == {"X-Test": "1"}
    assert loaded["characters"] == [
        {"name": "Alice", "traits": ["kind"], "style": {"tone": "warm"}},
        {"name": "Bob", "inline": [{"a": 1}]},
    ]
    assert loaded["path"] == str(tmp_path)


def test_dumps_toml_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match="set"):
        dumps_toml({"bad": {1, 2}})
    assert tomllib.loads(dumps_toml({})) == {}
