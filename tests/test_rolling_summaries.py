"""Rolling summaries, written by a real OpenAI-compatible server, stored in SQLite, read back in prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.config import BotConfig
from bot.engine.model import EchoChatModel, OpenAIChatModel
from bot.engine.prompt import TokenCounter
from bot.memory import Summarizer
from bot.messages import ChatKey
from bot.router import Router
from storage import Database, Repository
from storage.models import Message
from tests.messages import group_message
from tests.support.openai_server import FakeOpenAIServer

GROUP = ChatKey("onebot", "100")
MEMORY = "Pip keeps a blue key for the lamp room and owes Orla a pie."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.reply_with(lambda body: MEMORY)
        yield server


@pytest.fixture
async def summarizer(
    router: Router, config: BotConfig, repository: Repository, server: FakeOpenAIServer
) -> AsyncIterator[Summarizer]:
    router.governor.chats.limit = router.governor.members.limit = 1000  # a long chat in one test minute
    model = OpenAIChatModel(
        model="fake-model", base_url=server.base_url, api_key="x", timeout_s=5, max_retries=0
    )
    yield Summarizer(config, repository, model, router.packs, TokenCounter.default())
    await model.aclose()


async def chat(router: Router, exchanges: int) -> None:
    for number in range(exchanges):
        await router.handle(group_message(f"Orla, note number {number}: the blue key is mine", user="42"))


async def test_older_messages_are_summarised_and_the_summary_reaches_the_prompt(
    router: Router,
    summarizer: Summarizer,
    server: FakeOpenAIServer,
    model: EchoChatModel,
    repository: Repository,
) -> None:
    await chat(router, 19)
    assert (await summarizer.run()).summarised == 0, "38 messages: not yet 20 past the 20-message window"

    await chat(router, 1)
    run = await summarizer.run()
    assert run.summarised == 1
    request = server.last_request
    assert "You keep the memory of Orla Finch" in request.system_text()
    assert "Pip:「note number 0: the blue key is mine」" in request.all_text(), "the oldest messages"
    assert "note number 19" not in request.all_text(), "the history window stays verbatim"

    text, covered = await repository.summaries.get(GROUP, "orla")
    assert text == MEMORY
    assert covered > 0
    rows = await repository.usage.rows("2000-01-01", "2999-12-31", GROUP)
    spent = [row for row in rows if row.user_id == ""]
    assert [row.replies for row in spent] == [1], "the summary's tokens count toward the chat's budget"
    assert spent[0].tokens > 0
    await router.handle(group_message("Orla, what do I owe you?"))
    assert model.prompts[-1].summary == MEMORY
    assert model.prompts[-1].tokens.summary > 0
    (shown,) = await router.handle(group_message("/memory"))
    assert f"In short: {MEMORY}" in shown.text


async def test_a_failed_summary_is_tried_again_at_the_next_run(
    router: Router, summarizer: Summarizer, server: FakeOpenAIServer, repository: Repository
) -> None:
    await chat(router, 20)
    server.fail_next(500)
    assert (await summarizer.run()).failed == 1
    assert await repository.summaries.get(GROUP, "orla") == ("", 0)
    assert (await summarizer.run()).summarised == 1
    assert (await repository.summaries.get(GROUP, "orla"))[0] == MEMORY


async def test_retention_deletes_only_old_messages_a_summary_keeps(
    router: Router, summarizer: Summarizer, repository: Repository, database: Database
) -> None:
    await router.handle(group_message("the gulls are loud today", user="9"))
    await chat(router, 20)
    await summarizer.run()
    _text, covered = await repository.summaries.get(GROUP, "orla")
    async with database.sessions.begin() as session:
        await session.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(days=40)))
    before = await repository.messages.count(GROUP)

    assert await summarizer.clean_up() == 0, "retention_days = 0 keeps everything"
    memory = summarizer.config.memory.model_copy(update={"retention_days": 30})
    summarizer.config = summarizer.config.model_copy(update={"memory": memory})
    deleted = await summarizer.clean_up()

    left = await repository.messages.recent(GROUP, "orla", limit=1000)
    assert deleted == before - len(left)
    assert deleted > 0
    assert all(message.id > covered for message in left), "what the summary covers went"
    assert len(left) == 20, "the history window, which no summary covers yet, stays"
    assert (await repository.summaries.get(GROUP, "orla"))[0] == MEMORY
