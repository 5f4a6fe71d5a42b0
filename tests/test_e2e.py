"""The whole bot as a user meets it: a real process, a real OneBot v11 client, a real model server.

The bot runs as ``python -m bot --config bot.toml`` in a temp folder; a
:class:`~tests.support.onebot_client.OneBotClient` plays NapCat over the reverse WebSocket and a
:class:`~tests.support.openai_server.FakeOpenAIServer` records every chat-completions request.
"""

from __future__ import annotations

import asyncio
import base64
import io
import signal
import sqlite3
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from tests.importers.samples import WREN, card_png_bytes, v3
from tests.packs import write_pack, write_xiaoman
from tests.support.bot_process import BotProcess, free_port, write_bot_toml
from tests.support.file_server import FileServer
from tests.support.onebot_client import ApiCall, OneBotClient, image_segment
from tests.support.openai_server import FakeOpenAIServer
from tests.support.postgres import BACKENDS

SCREENSHOT_LINE = "Sixty-eight candles is a fire hazard."
PACE_S = 0.1
"""[sending] min_gap_s of the bot under test: fast enough for the tests, slow enough to measure."""
SELF_ID = 10_000
TOKEN = "e2e-secret"

ORLA_SCENES = {
    "001": [
        "Pip: Orla, the storm is coming tonight.",
        "Orla: Then tie the boat twice and bring the lantern.",
    ],
    "002": ["Tam: Your cat Barnacle ate my kippers again.", "Orla: Barnacle has taste. Your kippers do not."],
    "003": [
        "Ines: Do the puffins nest on the north cliff?",
        "Orla: Every spring, on the ledges below the light.",
    ],
    "004": ["Pip: Happy birthday, Orla! I baked a cake.", "Orla: Sixty-eight candles is a fire hazard."],
}


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for every bot process, so scene embeddings are computed once per session."""
    return tmp_path_factory.mktemp("e2e-data")


@pytest.fixture
def model_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


class Harness:
    """A bot workdir: config, packs and database, and the process started from it."""

    def __init__(
        self,
        root: Path,
        data: Path,
        llm: dict[str, Any],
        *,
        discord: bool = False,
        database_url: str | None = None,
        voice: dict[str, Any] | None = None,
        extra_pack: Callable[[Path], object] | None = None,
    ) -> None:
        """``extra_pack`` writes one more pack into the characters folder it is given."""
        self.root = root
        self.port = free_port()
        characters = root / "characters"
        write_pack(
            characters,
            persona="You are Orla Finch, keeper of Skerrow Light.",
            scenes=ORLA_SCENES,
            screenshots=[SCREENSHOT_LINE],
        )
        write_xiaoman(characters)
        if extra_pack is not None:
            extra_pack(characters)
        self.config = write_bot_toml(
            root / "bot.toml",
            {
                "platforms": {
                    "onebot": {"access_token": TOKEN},
                    "console": {"enabled": False},
                    "discord": {"enabled": discord, "token_env": "E2E_DISCORD_TOKEN"},
                }
            },
            server={"host": "127.0.0.1", "port": self.port},
            llm={"timeout_s": 5, **llm},
            storage={"url": database_url or "sqlite+aiosqlite:///db/bot.sqlite3", "data_dir": str(data)},
            characters={
                "dir": "characters",
                "default": "orla",
                "max_import_mb": 1,
                # imports here come from a FileServer on loopback, which the bot refuses by default
                "allow_private_urls": True,
            },
            admins={"character_managers": "group_admins"},
            scheduler={"retry_min": 0.05},
            sending={"min_gap_s": PACE_S, "burst": 2, "retry_s": 0.05},
            voice=voice or {},
        )
        self.process: BotProcess | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/onebot/v11/ws"

    async def start(self) -> OneBotClient:
        self.process = BotProcess(
            self.config, cwd=self.root, extra_env={"E2E_DISCORD_TOKEN": "not.a.real-token"}
        ).start()
        await self.process.wait_ready_async("127.0.0.1", self.port, timeout=120)
        return await OneBotClient.connect(self.url, self_id=SELF_ID, access_token=TOKEN, timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def assert_alive(self) -> None:
        assert self.process is not None
        assert self.process.running, self.process.tail(60)


@pytest.fixture(params=BACKENDS)
def harness(
    tmp_path: Path, shared_data: Path, model_server: FakeOpenAIServer, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    """The bot on SQLite, and again on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    harness = Harness(
        tmp_path, shared_data, {"base_url": model_server.base_url, "model": "fake-model"}, database_url=url
    )
    yield harness
    if harness.process is not None:
        tail = harness.process.tail(40)
        harness.stop()
        print(tail)


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[OneBotClient]:
    client = await harness.start()
    yield client
    await client.close()


async def say(
    client: OneBotClient, group: int, text: str, *, user: int = 501, at_bot: bool = True, **kw: Any
) -> int:
    return await client.send_group_message(group, user, text, at_bot=at_bot, nickname=f"user{user}", **kw)


async def reply_in(client: OneBotClient, group: int, within: float = 20) -> ApiCall:
    return await client.wait_for_call("send_group_msg", lambda call: call.group_id == group, timeout=within)


async def test_a_mention_gets_an_in_character_reply_quoting_the_sender(
    client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    message_id = await say(client, 1001, " is a storm coming tonight?")
    call = await reply_in(client, 1001)
    assert call.reply_to() == message_id
    assert call.text() == "Reply #1: heard 'user501:is a storm coming tonight?'"

    request = model_server.last_request
    system = request.system_text()
    assert request.model == "fake-model"
    assert "You are Orla Finch, keeper of Skerrow Light." in system
    assert "Orla:「Then tie the boat twice and bring the lantern.」" in system, "the storm scene is retrieved"
    assert request.messages[-1] == {"role": "user", "content": "user501:「is a storm coming tonight?」"}


async def test_groups_switch_and_remember_separately(
    client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    await say(client, 1001, "my secret word is marmalade")
    await reply_in(client, 1001)
    await say(client, 1002, "/switch 小满", at_bot=False)
    switched = await reply_in(client, 1002)
    assert switched.text() == "[苏小满] Hello from 苏小满."

    await say(client, 1002, "今天喝什么茶？")
    await reply_in(client, 1002)
    other_group = model_server.last_request
    assert "你是苏小满" in other_group.system_text()
    assert "marmalade" not in other_group.all_text(), "one group never sees another group's messages"

    await say(client, 1001, "what was my secret word?")
    await reply_in(client, 1001)
    same_group = model_server.last_request
    assert "Orla Finch" in same_group.system_text(), "/switch changed only group 1002"
    assert "user501:「my secret word is marmalade」" in same_group.texts("user")
    assert same_group.messages[2]["role"] == "assistant"


async def test_who_calls_a_character_gets_an_answer_and_chatter_gets_none(
    client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    mark = client.mark()
    await say(client, 1003, "lunch anyone?", at_bot=False)
    await client.expect_no_call("send_group_msg", within=1.5)
    await say(client, 1003, "Orla, do puffins nest here?", at_bot=False)
    call = await reply_in(client, 1003)
    assert call.text().startswith("Reply #1:")
    assert model_server.last_request.messages[-1]["content"] == "user501:「do puffins nest here?」"
    assert client.mark() == mark + 1

    await client.send_private_message(777, "hello keeper", nickname="Maeve")
    private = await client.wait_for_call("send_private_msg", timeout=20)
    assert private.user_id == 777
    assert private.text() == "Reply #2: heard 'Maeve:hello keeper'"


async def test_commands_with_and_without_mention(client: OneBotClient) -> None:
    await say(client, 1004, "/characters", at_bot=False)
    listing = (await reply_in(client, 1004)).text()
    assert "orla — Orla Finch" in listing
    assert "xiaoman — 苏小满" in listing
    await say(client, 1004, " /who")
    assert (await reply_in(client, 1004)).text().startswith("Active character: orla")
    await say(client, 1004, "/reset", at_bot=False)
    assert (await reply_in(client, 1004)).text() == "/reset is for group admins only."
    await say(client, 1004, "/reset", at_bot=False, user=502, role="admin")
    assert (await reply_in(client, 1004)).text().startswith("Memory of this chat cleared")
    await say(client, 1004, "/help", at_bot=False)
    assert "/switch <id | name | alias>" in (await reply_in(client, 1004)).text()


async def test_malformed_events_do_not_break_the_bot(
    harness: Harness, client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    await client.send_group_message(1005, 501, "", at_bot=True)
    await client.send_group_message(1005, 501, segments=[image_segment()], at_bot=True)
    await client.send_raw("{this is not json")
    await client.send_raw('{"post_type": "message", "message_type": "group"}')
    await say(client, 1005, "x" * 20_000)
    long_reply = await reply_in(client, 1005, within=30)
    assert long_reply.text().startswith("Reply #1:")
    await client.expect_no_call("send_group_msg", within=1.0)

    await say(client, 1005, "still there?")
    assert (await reply_in(client, 1005)).text() == "Reply #2: heard 'user501:still there?'"
    assert len(model_server.requests) == 2, "the empty and image-only messages never reached the model"
    harness.assert_alive()


async def test_model_errors_are_retried(client: OneBotClient, model_server: FakeOpenAIServer) -> None:
    model_server.fail_next(500, times=2)
    await say(client, 1006, "are you there?")
    call = await reply_in(client, 1006, within=30)
    assert call.text().startswith("Reply #3:"), "two failures, then the third attempt answers"
    assert len(model_server.requests) == 3


async def test_memory_survives_a_restart_and_a_kill(harness: Harness, model_server: FakeOpenAIServer) -> None:
    client = await harness.start()
    await say(client, 1007, "remember the blue door")
    await reply_in(client, 1007)
    await client.close()
    harness.stop()

    client = await harness.start()
    model_server.set_delay(30)
    await say(client, 1007, "this one is said just before a crash")
    await model_server.wait_for_requests_async(2, timeout=20)
    harness.kill()
    await client.close()

    model_server.set_delay(0)
    client = await harness.start()
    await say(client, 1007, "what did I ask you to remember?")
    await reply_in(client, 1007)
    history = model_server.last_request.texts("user")
    assert "user501:「remember the blue door」" in history
    assert "user501:「this one is said just before a crash」" in history, "stored before the model was called"
    await client.close()


def a_minute_ago() -> tuple[str, str]:
    """A time zone where it is not just past midnight, and the time there a minute ago (``HH:MM``)."""
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        now = datetime.now(ZoneInfo(zone))
        if now.hour or now.minute >= 2:
            return zone, f"{now - timedelta(minutes=1):%H:%M}"
    raise AssertionError("it cannot be just past midnight everywhere")


async def test_a_daily_greeting_survives_a_restart(harness: Harness, model_server: FakeOpenAIServer) -> None:
    greeting = "Morning, all. The lamp is out and the kettle is on."
    model_server.reply_with(lambda body: greeting)
    client = await harness.start()
    zone, at = a_minute_ago()
    await say(client, 1010, f"/greet on {at} {zone}", role="admin")
    done = (await reply_in(client, 1010)).text()
    assert done.startswith(
        f"Orla Finch will greet this chat every day at {at} ({zone}); the first greeting comes"
    )
    await client.close()
    harness.stop()

    client = await harness.start()
    try:
        late = await reply_in(client, 1010, within=30)
        assert late.text() == greeting, "missed while the bot was down, sent once it is back"
        assert "Orla Finch greets everyone in the group" in model_server.last_request.last_user_text()
        assert "You are Orla Finch, keeper of Skerrow Light." in model_server.last_request.system_text()
    finally:
        await client.close()


async def test_model_server_down_gives_the_apology(tmp_path: Path, shared_data: Path) -> None:
    harness = Harness(
        tmp_path, shared_data, {"base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 1}
    )
    client = await harness.start()
    try:
        await say(client, 1008, "hello?")
        assert (
            await reply_in(client, 1008)
        ).text() == "Sorry, my thoughts wandered off. Say that again in a moment?"
        await say(client, 1008, "/who", at_bot=False)
        assert (await reply_in(client, 1008)).text().startswith("Active character: orla")
        harness.assert_alive()
    finally:
        await client.close()
        harness.stop()


async def test_a_wrong_access_token_is_refused(harness: Harness) -> None:
    client = await harness.start()
    await client.close()
    with pytest.raises(ConnectionError):
        await OneBotClient.connect(harness.url, self_id=SELF_ID, access_token="wrong", timeout=3)


def decoded_images(call: ApiCall) -> list[Image.Image]:
    images: list[Image.Image] = []
    for segment in call.segments():
        if segment["type"] == "image":
            file = str(segment["data"]["file"])
            assert file.startswith("base64://")
            image = Image.open(io.BytesIO(base64.b64decode(file.removeprefix("base64://"))))
            image.load()
            images.append(image)
    return images


async def test_a_reply_close_to_a_captioned_line_comes_with_its_screenshot(
    client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    model_server.reply_text(f"Orla: {SCREENSHOT_LINE}")
    await say(client, 1009, "How many candles on your cake?")
    call = await reply_in(client, 1009)
    assert call.segment_types() == ["reply", "text", "image"]
    assert call.text() == SCREENSHOT_LINE
    assert [image.size for image in decoded_images(call)] == [(160, 90)]

    model_server.reply_text(f"Orla: {SCREENSHOT_LINE} Told you once.")  # the same text twice is not posted
    await say(client, 1009, "Say that again?")
    assert decoded_images(await reply_in(client, 1009)) == [], "the chat's screenshot cooldown holds"

    await say(client, 1010, "/images off", at_bot=False, role="admin")
    assert (await reply_in(client, 1010)).text() == "Screenshots off for this chat."
    await say(client, 1010, "How many candles?")
    assert decoded_images(await reply_in(client, 1010)) == []

    await say(client, 1011, "/scene candles", at_bot=False)
    scene = await reply_in(client, 1011)
    assert scene.text() == f"「{SCREENSHOT_LINE}」"
    assert len(decoded_images(scene)) == 1


async def test_onebot_keeps_serving_while_discord_cannot_log_in(
    tmp_path: Path, shared_data: Path, model_server: FakeOpenAIServer
) -> None:
    harness = Harness(tmp_path, shared_data, {"base_url": model_server.base_url}, discord=True)
    client = await harness.start()
    try:
        await say(client, 1010, " hello through QQ")
        assert (await reply_in(client, 1010)).text().startswith("Reply #1:")
        assert harness.process is not None
        log = harness.process.tail(200)
        # Without a network Discord is unreachable; with one, it refuses the made-up token.
        assert "cannot reach Discord" in log or "Discord refused the bot token" in log, log
    finally:
        await client.close()
        harness.stop()


def wren_card() -> bytes:
    """Wren Calloway's Character Card V3 PNG, with her lorebook (the parrot Ballast)."""
    return card_png_bytes(v3(WREN))


async def group_message_with(client: OneBotClient, group: int, predicate: str, within: float = 60) -> ApiCall:
    return await client.wait_for_message(
        group_id=group, predicate=lambda call: predicate in call.text(), timeout=within
    )


async def test_an_admin_imports_a_card_sent_in_the_group_and_the_character_plays_it(
    client: OneBotClient, model_server: FakeOpenAIServer
) -> None:
    group, admin, member = 1020, 601, 602
    card = await client.send_group_message(
        group, admin, segments=[client.receive_file("wren.png", wren_card())]
    )

    await say(client, group, "/character import", user=member, reply_to=card)
    assert (await reply_in(client, group)).text() == (
        "/character import is for admins of a group, catalog managers and bot superusers only."
    )

    await client.send_group_message(group, admin, "/character import wren", role="admin", reply_to=card)
    acknowledgement = await group_message_with(client, group, "Importing")
    assert acknowledgement.text() == "Importing wren.png… I'll post here when it is ready."
    imported = await group_message_with(client, group, "Imported")
    assert imported.text().startswith(
        "Imported Wren Calloway as wren (card-png): 2 scenes, 3 lorebook entries."
    )
    indexed = await group_message_with(client, group, "indexed")
    assert indexed.text() == "Wren Calloway: indexed 2/2 scenes, ready."

    await say(client, group, "/switch wren", at_bot=False)
    assert (await group_message_with(client, group, "[Wren Calloway]")).text().startswith("[Wren Calloway] ")
    await say(client, group, "is Ballast asleep on the compass box?")
    answer = await group_message_with(client, group, "Reply #")
    assert "Ballast" in answer.text()
    system = model_server.last_request.system_text()
    assert "pilots the night ferry Marigold across Saltmere Sound" in system, "the card's persona"
    assert "one-eyed parrot" in system, "the lorebook entry its key triggered"

    await client.send_group_message(group, admin, "/character export wren", role="admin")
    upload = await client.wait_for_call("upload_group_file", timeout=20)
    assert upload.params["name"] == "wren.zip"
    assert upload.group_id == group
    with zipfile.ZipFile(upload.params["file"]) as archive:
        assert any(name.endswith("character.toml") for name in archive.namelist())


async def test_a_file_from_the_group_files_is_imported_and_a_big_one_refused(client: OneBotClient) -> None:
    group, admin = 1021, 611
    with FileServer() as files:
        url = files.add("ferry.png", wren_card())
        client.on_action("get_group_file_url", lambda params: {"url": url})
        await client.send_group_upload(
            group, admin, {"id": "/f1", "name": "ferry.png", "size": 900, "busid": 102}
        )
        await client.send_group_message(group, admin, "/character import ferry", role="admin")
        imported = await group_message_with(client, group, "Imported")
        assert imported.text().startswith("Imported Wren Calloway as ferry (card-png)")
        assert files.requests == ["/ferry.png"]

    big = client.receive_file("huge.png", b"\x89PNG" + bytes(1_200_000))
    await client.send_group_message(group, admin, "/character import", role="admin", segments=[big])
    refused = await group_message_with(client, group, "huge.png")
    assert refused.text() == "huge.png is 1,200,004 bytes, over the import limit of 1,000,000 bytes."


@pytest.mark.parametrize("harness", ["sqlite"], indirect=True)  # sending does not touch the database
async def test_a_burst_of_replies_is_paced_and_a_refused_one_retried(client: OneBotClient) -> None:
    """Fifty groups ask at once: never more than two replies (the burst) within PACE_S, one per
    PACE_S on average; the first refusal (QQ's rate-limit retcode) is retried, and every group gets
    its answer."""
    client.fail_action("send_group_msg", retcode=1200, message="rate limited", times=1)
    start = client.mark()
    groups = range(3001, 3051)
    for group in groups:
        await say(client, group, f"hello from {group}")
    calls = []
    for group in groups:
        call = await reply_in(client, group, within=30)
        calls.append(call if call.ok else await reply_in(client, group, within=30))
    answered = sorted(call.received_at for call in calls)
    assert {call.group_id for call in calls if call.ok} == set(groups), "nothing lost"
    refused = [call for call in client.calls[start:] if call.action == "send_group_msg" and call.failed]
    assert len(refused) == 1, "the refused post was tried again"
    spans = [later - earlier for earlier, later in zip(answered, answered[2:], strict=False)]
    assert min(spans) >= PACE_S * 0.8, f"never more than the burst of 2 within {PACE_S} s: {spans}"
    assert answered[-1] - answered[0] >= (len(answered) - 2) * PACE_S * 0.8


def deliveries(harness: Harness) -> list[tuple[str, str]]:
    """``(chat, state)`` of every reply the bot recorded, read from its SQLite file as it runs."""
    with closing(sqlite3.connect(harness.root / "db" / "bot.sqlite3")) as database:
        return database.execute("SELECT chat_id, state FROM deliveries ORDER BY id").fetchall()


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("harness", ["sqlite"], indirect=True)
async def test_replies_outlast_a_reconnect_a_kill_and_a_restart_and_go_out_once(
    harness: Harness, model_server: FakeOpenAIServer
) -> None:
    """The account's socket drops while the model thinks: the reply waits and goes out on the new
    connection. The bot is killed with replies ready but unposted: after the restart they go out once,
    and the same events sent again get no second answer. SIGTERM then stops it at once."""
    client = await harness.start()
    model_server.set_delay(2)
    asked = await say(client, 1201, "light the lamp")
    await model_server.wait_for_requests_async(1, timeout=20)
    await client.close()
    await asyncio.sleep(3)
    client = await OneBotClient.connect(harness.url, self_id=SELF_ID, access_token=TOKEN, timeout=30)
    back = await reply_in(client, 1201)
    assert (back.reply_to(), back.text()) == (asked, "Reply #1: heard 'user501:light the lamp'")

    model_server.set_delay(3)
    groups = range(1211, 1216)
    asked_in = {group: await say(client, group, f"hello from {group}") for group in groups}
    events = [event for event in client.sent_events if event.get("post_type") == "message"][-5:]
    await model_server.wait_for_requests_async(6, timeout=30)
    await client.close()
    await until(lambda: len(deliveries(harness)) == 6)
    assert [state for _chat, state in deliveries(harness)] == ["posted"] + ["pending"] * 5
    harness.kill()

    model_server.set_delay(0)
    client = await harness.start()
    for group in groups:
        call = await reply_in(client, group)
        assert call.reply_to() == asked_in[group]
        assert call.text().endswith(f"heard 'user501:hello from {group}'")
    for event in events:
        await client.send_event(event)
    await client.expect_no_call("send_group_msg", within=2.0)
    assert len(model_server.requests) == 6, "nothing was asked twice"
    assert [state for _chat, state in deliveries(harness)] == ["posted"] * 6

    assert harness.process is not None
    started = time.monotonic()
    assert harness.process.stop(timeout=15) in (0, -signal.SIGTERM), "it stopped by itself, not killed"
    assert time.monotonic() - started < 10
    harness.process = None
    await client.close()


async def test_a_group_that_turned_training_on_is_exported_while_the_bot_runs(
    harness: Harness, client: OneBotClient, model_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model_server.reply_text("Yes.")
    consenting, silent, member, admin = 1030, 1031, 701, 702
    await say(client, consenting, "/training on", at_bot=False, user=member)
    assert "for group admins only" in (await reply_in(client, consenting)).text()
    await say(client, consenting, "/training on", at_bot=False, user=admin, role="admin")
    assert (await reply_in(client, consenting)).text().startswith("Training export on:")
    await say(client, consenting, "is the lamp lit tonight? my number is 13812345678", user=member)
    await reply_in(client, consenting)
    await say(client, silent, "this group never agreed to anything", user=member)
    await reply_in(client, silent)

    out = tmp_path / "export"
    exported = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(harness.config), "export", "training",
        "--character", "orla", "--from-chats", "--format", "openai", "--out", str(out),
        cwd=harness.root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    printed, _ = await asyncio.wait_for(exported.communicate(), 120)

    assert exported.returncode == 0, printed.decode()
    written = (out / "train.jsonl").read_text() + (out / "validation.jsonl").read_text()
    assert "Member 1:「is the lamp lit tonight? my number is [phone]」" in written
    assert "never agreed" not in written
    assert f"user{member}" not in written
    assert "1 chat with /training on" in printed.decode()
    harness.assert_alive()
