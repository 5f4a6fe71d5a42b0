"""Run the bot as a real subprocess and write its TOML configuration.

End-to-end tests start the bot exactly as a user would (``python -m bot --config FILE``) so
that config loading, startup, signal handling and shutdown are covered too.  Output goes to a
log file rather than a pipe: a pipe nobody drains can fill up and block the bot, and a file can
be tailed into the assertion message when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "REPO_ROOT",
    "BotExitedError",
    "BotProcess",
    "dumps_toml",
    "free_port",
    "write_bot_toml",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Checkout root: put on the child's ``PYTHONPATH`` so ``-m bot`` works from any cwd."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago.

    The port is released before returning (the bot must bind it itself), so another process
    could grab it in between; on a test machine that race is negligible.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BotExitedError(RuntimeError):
    """The bot process ended while a test was still waiting for it."""


class BotProcess:
    """The bot (or any ``argv``) running as a child process with its output in a log file.

    ``cwd`` is where the child runs (typically a tmp dir, so relative data paths stay there);
    :data:`REPO_ROOT` is prepended to ``PYTHONPATH`` so the ``bot`` package is importable
    anyway.  The child gets the parent's environment (or ``env``) plus ``extra_env`` and
    ``PYTHONUNBUFFERED=1`` so log lines appear as they are written.

    The child runs in its own process group: :meth:`stop` and :meth:`kill` take down helpers it
    may have spawned too, and a Ctrl-C in the terminal reaches pytest only, which then stops the
    bot through the normal path.
    """

    def __init__(
        self,
        config_path: Path | str | None = None,
        *,
        cwd: Path | str,
        log_path: Path | str | None = None,
        extra_env: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        pythonpath: Sequence[Path | str] = (REPO_ROOT,),
    ) -> None:
        if argv is None and config_path is None:
            raise ValueError("BotProcess needs config_path (or an explicit argv)")
        self.cwd = Path(cwd)
        self.config_path = Path(config_path) if config_path is not None else None
        self.argv: list[str] = (
            list(argv)
            if argv is not None
            else [sys.executable, "-m", "bot", "--config", str(self.config_path)]
        )
        default_log_dir = self.config_path.parent if self.config_path is not None else self.cwd
        self.log_path = Path(log_path) if log_path is not None else default_log_dir / "bot-process.log"
        self.env = self._build_env(env, extra_env, pythonpath)
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _build_env(
        env: Mapping[str, str] | None, extra_env: Mapping[str, str] | None, pythonpath: Sequence[Path | str]
    ) -> dict[str, str]:
        result = dict(os.environ if env is None else env)
        result["PYTHONUNBUFFERED"] = "1"
        paths = [str(p) for p in pythonpath]
        if result.get("PYTHONPATH"):
            paths.append(result["PYTHONPATH"])
        if paths:
            result["PYTHONPATH"] = os.pathsep.join(paths)
        result.update(extra_env or {})
        return result

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("BotProcess already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._require_proc().pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process ended (negative for a signal), ``None`` while running."""
        return None if self._proc is None else self._proc.poll()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("BotProcess not started")
        return self._proc

    def send_signal(self, sig: int) -> None:
        """Signal the main process only (e.g. ``SIGINT`` to test graceful shutdown)."""
        proc = self._require_proc()
        if proc.poll() is None:
            proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the whole group; returns the exit status.

        Safe to call repeatedly and on a process that already exited.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
                proc.wait()
        self._kill_group(proc)
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL immediately (simulates a crash); returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        self._kill_group(proc)
        proc.wait()
        return proc.returncode

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the child's process group (its pgid is its pid thanks to start_new_session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ logs

    def log_text(self) -> str:
        """Everything the process printed so far (stdout and stderr interleaved)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 100) -> str:
        """The last ``n`` log lines, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-n:])

    def _failure_report(self, what: str) -> str:
        status = self.returncode
        state = "running" if status is None else f"exited with {status}"
        header = f"{what} (process {state}, argv={self.argv})"
        return f"{header}\n--- last log lines ({self.log_path}) ---\n{self.tail()}"

    # ------------------------------------------------------------------ waiting

    def _check_port(self, host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _check_alive(self, waiting_for: str) -> None:
        if self._require_proc().poll() is not None:
            raise BotExitedError(self._failure_report(f"bot exited while waiting for {waiting_for}"))

    def wait_ready(self, host: str = "127.0.0.1", port: int = 8080, timeout: float = 60.0) -> None:
        """Poll until ``host:port`` accepts TCP connections.

        Fails early with the log tail if the process exits, so a crash at startup shows its
        traceback instead of a bare timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(f"{host}:{port}")
            if self._check_port(host, port):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(self._failure_report(f"{host}:{port} not accepting after {timeout}s"))
            time.sleep(0.1)

    async def wait_ready_async(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> None:
        """:meth:`wait_ready` for asyncio tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(f"{host}:{port}")
            if await asyncio.to_thread(self._check_port, host, port):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(self._failure_report(f"{host}:{port} not accepting after {timeout}s"))
            await asyncio.sleep(0.1)

    def _search_log(self, pattern: str | re.Pattern[str]) -> re.Match[str] | None:
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        return regex.search(self.log_text())

    def _poll_log(
        self, pattern: str | re.Pattern[str], deadline: float, timeout: float
    ) -> re.Match[str] | None:
        """One look at the log: the match, ``None`` to keep waiting, or an error once it is hopeless."""
        exited = self._require_proc().poll() is not None
        match = self._search_log(pattern)
        if match is not None:
            return match
        if exited:
            raise BotExitedError(self._failure_report(f"bot exited before logging {pattern!r}"))
        if time.monotonic() >= deadline:
            raise TimeoutError(self._failure_report(f"{pattern!r} not logged after {timeout}s"))
        return None

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """Wait until the log contains ``pattern`` (a literal string, or a compiled regex).

        Exiting is not an immediate failure: the line may be the last thing the process wrote.
        """
        deadline = time.monotonic() + timeout
        while (match := self._poll_log(pattern, deadline, timeout)) is None:
            time.sleep(0.05)
        return match

    async def wait_for_log_async(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> re.Match[str]:
        """:meth:`wait_for_log` for asyncio tests."""
        deadline = time.monotonic() + timeout
        while (match := self._poll_log(pattern, deadline, timeout)) is None:  # noqa: ASYNC110 - polls a file
            await asyncio.sleep(0.05)
        return match

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end on its own; returns its exit status."""
        try:
            return self._require_proc().wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(self._failure_report(f"still running after {timeout}s")) from None


# ---------------------------------------------------------------------- TOML writing

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(value: str) -> str:
    out: list[str] = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    """Render an inline value; ``bool`` is tested before ``int`` because it is a subclass."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Path):
        return _toml_string(str(value))
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _toml_table(data: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    """Append a table's body: plain keys first (TOML requires them before any sub-table
    header), then sub-tables as ``[a.b]``, then arrays of tables as ``[[a.b]]``."""
    for key, value in data.items():
        if value is None or isinstance(value, Mapping) or _is_table_array(value):
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, Mapping):
            sub_path = (*path, key)
            lines.extend(["", f"[{'.'.join(_toml_key(p) for p in sub_path)}]"])
            _toml_table(value, sub_path, lines)
    for key, value in data.items():
        if _is_table_array(value):
            sub_path = (*path, key)
            for item in value:
                lines.extend(["", f"[[{'.'.join(_toml_key(p) for p in sub_path)}]]"])
                _toml_table(item, sub_path, lines)


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Serialise nested mappings to TOML.

    Supports str, int, float, bool, Path, lists (of scalars, or of mappings as arrays of
    tables) and nested tables; ``None`` values are omitted since TOML has no null.  Written
    by hand because the standard library can only *read* TOML.
    """
    lines: list[str] = []
    _toml_table(data, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_bot_toml(path: Path | str, data: Mapping[str, Any] | None = None, /, **sections: Any) -> Path:
    """Write a TOML config file and return its path.

    ``write_bot_toml(tmp / "bot.toml", onebot={"access_token": "t"}, llm={"base_url": url})``;
    keys that are not valid Python identifiers go in the positional ``data`` mapping, which
    ``sections`` update.
    """
    merged: dict[str, Any] = dict(data or {})
    merged.update(sections)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps_toml(merged), encoding="utf-8")
    return target
