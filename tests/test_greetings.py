"""Daily greetings: ``/greet on 08:30``, fired by the real scheduler at a frozen clock, written by a real
OpenAI-compatible server from the persona and the day, stored so they survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.config import BotConfig
from bot.engine.model import OpenAIChatModel
from bot.messages import ChatKey, Reply, Role
from bot.outbox import Outbox
from bot.router import Router
from bot.scheduler import Scheduler
from storage import Repository
from tests.messages import group_message
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.both_databases


SHANGHAI = ZoneInfo("Asia/Shanghai")
GROUP = ChatKey("onebot", "100")
GREETING = "Morning, all. The fog lifted early; the lamp can rest."


class Posts:
    """What the bot posts on its own to OneBot chats, and a way to wait for it."""

    def __init__(self, outbox: Outbox) -> None:
        self.posted: list[tuple[ChatKey, Reply]] = []
        self._changed = asyncio.Condition()
        outbox.register("onebot", self.post)

    async def post(self, key: ChatKey, reply: Reply) -> None:
        async with self._changed:
            self.posted.append((key, reply))
            self._changed.notify_all()

    async def wait(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.posted) >= count)

    def __len__(self) -> int:
        return len(self.posted)


@pytest.fixture
def posts(outbox: Outbox) -> Posts:
    return Posts(outbox)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.reply_text(GREETING)
        yield server


@pytest.fixture
async def model(server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    """The router fixture's model: a real client of the test server, retrying nothing."""
    model = OpenAIChatModel(
        model="fake-model", base_url=server.base_url, api_key="x", timeout_s=5, max_retries=0
    )
    yield model
    await model.aclose()


async def turn_on(router: Router, text: str = "/greet on 08:30 Asia/Shanghai") -> Reply:
    (reply,) = await router.handle(group_message(text, role=Role.ADMIN))
    return reply


def restarted(router: Router) -> Router:
    """The same database, packs and model under a new router and scheduler: the bot after a restart."""
    return Router(
        config=router.config,
        catalog=router.catalog,
        repository=router.repository,
        responder=router.responder,
        commands=router.commands,
        scheduler=Scheduler(),
        outbox=router.outbox,
        ledger=router.ledger,
    )


async def test_the_greeting_fires_at_its_time_written_from_the_persona_and_the_day(
    router: Router, server: FakeOpenAIServer, posts: Posts, repository: Repository
) -> None:
    with time_machine.travel(datetime(2026, 11, 24, 8, 29, 58, tzinfo=SHANGHAI), tick=True):
        router.scheduler.start()
        done = await turn_on(router)
        assert done.text == (
            "Orla Finch will greet this chat every day at 08:30 (Asia/Shanghai); "
            "the first greeting comes Tue 24 Nov 08:30."
        )
        assert len(posts) == 0, "nothing before its time"
        await posts.wait(1)
        fired = datetime.now(SHANGHAI)

    assert fired >= datetime(2026, 11, 24, 8, 30, tzinfo=SHANGHAI)
    ((key, reply),) = posts.posted
    assert (key, reply.text, reply.character, reply.quote) == (GROUP, GREETING, "orla", False)
    request = server.last_request
    assert "You are Orla Finch, a lighthouse keeper." in request.system_text()
    assert "It is Tuesday, 24 November 2026, 08:30 in the morning." in request.last_user_text()
    stored = await repository.messages.recent(GROUP, "orla", limit=5)
    assert [(message.role, message.text) for message in stored] == [("character", GREETING)]


async def test_the_greeting_survives_a_restart_and_a_missed_one_is_sent_late_once(
    router: Router, server: FakeOpenAIServer, posts: Posts
) -> None:
    with time_machine.travel(datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI), tick=True):
        await turn_on(router)
    await router.scheduler.aclose()

    with time_machine.travel(datetime(2026, 11, 24, 8, 50, tzinfo=SHANGHAI), tick=True):
        after = restarted(router)
        assert await after.greetings.schedule_saved() == 1
        after.scheduler.start()
        await posts.wait(1)
        (jobs,) = await after.handle(group_message("/jobs", role=Role.ADMIN))
        assert "• greeting in onebot:100 (greeting:onebot:100): next run 2026-11-25 08:30 CST" in jobs.text
        await after.scheduler.aclose()

        again = restarted(router)
        await again.greetings.schedule_saved()
        again.scheduler.start()
        await asyncio.sleep(0.5)
        await again.scheduler.aclose()
    assert len(posts) == 1, "one greeting a day, whatever the restarts"
    assert len(server.requests) == 1


async def test_a_greeting_missed_by_more_than_the_grace_waits_for_tomorrow(
    router: Router, posts: Posts
) -> None:
    with time_machine.travel(datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI), tick=True):
        await turn_on(router)
    with time_machine.travel(datetime(2026, 11, 24, 11, 0, tzinfo=SHANGHAI), tick=True):
        after = restarted(router)
        await after.greetings.schedule_saved()
        after.scheduler.start()
        await asyncio.sleep(0.3)
        await after.scheduler.aclose()
    assert len(posts) == 0


async def test_a_failed_greeting_is_retried_and_the_bot_goes_on(
    router: Router, server: FakeOpenAIServer, posts: Posts, config: BotConfig
) -> None:
    router.scheduler.retry = router.scheduler.retry / 300  # one second instead of five minutes
    server.fail_next(500)
    with time_machine.travel(datetime(2026, 11, 24, 8, 29, 59, tzinfo=SHANGHAI), tick=True):
        router.scheduler.start()
        await turn_on(router)
        await server.wait_for_requests_async(1)
        (still_here,) = await router.handle(group_message("Orla, are you there?"))
        assert still_here.text == GREETING, "a failing job never stops the replies"
        await posts.wait(1)
    assert [reply.text for _key, reply in posts.posted] == [GREETING]
    assert len(server.requests) == 3, "the failed greeting, the reply, the retried greeting"


async def test_a_greeting_with_no_platform_to_post_to_is_not_lost(
    router: Router, server: FakeOpenAIServer, repository: Repository
) -> None:
    router.outbox.unregister("onebot")
    await turn_on(router)
    with pytest.raises(Exception, match="could not be posted"):
        await router.greetings.greet(GROUP)
    saved = await repository.greetings.get(GROUP)
    assert saved is not None
    assert saved.last_sent is None, "the day is given back for the retry"


async def test_greet_shows_moves_and_turns_off(router: Router) -> None:
    (none,) = await router.handle(group_message("/greet"))
    assert none.text == "No daily greeting here. A chat admin turns it on with /greet on 08:30 [time zone]."
    (refused,) = await router.handle(group_message("/greet on 08:30"))
    assert refused.text == "/greet on is for group admins only."

    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)):
        await turn_on(router, "/greet on 7：45 Asia/Shanghai")
        (shown,) = await router.handle(group_message("/greet"))
    assert (
        shown.text
        == "Orla Finch greets this chat every day at 07:45 (Asia/Shanghai); next: Wed 25 Nov 07:45."
    )
    assert [job.id for job in router.scheduler.jobs(GROUP)] == ["greeting:onebot:100"]
    assert router.scheduler.jobs(ChatKey("onebot", "other")) == [], "another group does not see it"

    (off,) = await router.handle(group_message("/greet off", role=Role.ADMIN))
    assert off.text == "Daily greetings are off here."
    assert router.scheduler.jobs(GROUP) == []


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("/greet on", "Usage: /greet on HH:MM [time zone], e.g. /greet on 08:30 Asia/Shanghai"),
        ("/greet on 25:00", "'25:00' is not a time of day: write it as HH:MM, e.g. /greet on 08:30"),
        ("/greet on soon", "'soon' is not a time of day: write it as HH:MM, e.g. /greet on 08:30"),
        (
            "/greet on 08:30 Mars/Olympus",
            "Unknown time zone 'Mars/Olympus' (use an IANA name such as 'Asia/Shanghai').",
        ),
    ],
)
async def test_a_wrong_greet_command_says_what_is_wrong(router: Router, command: str, error: str) -> None:
    assert (await turn_on(router, command)).text == error
    assert router.scheduler.jobs(GROUP) == []
