"""The traces store: one INSERT for a message's traces, a chat's list newest first with what was said,
one trace by its reply's delivery id, and the retention delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.messages import ChatKey
from storage import Repository
from storage.deliveries import Outgoing
from storage.models import Trace, utcnow
from storage.traces import NewTrace

pytestmark = pytest.mark.both_databases

GROUP = ChatKey("onebot", "100")
OTHER = ChatKey("discord", "100")


async def said(repository: Repository, key: ChatKey, *texts: str) -> list[int]:
    """Record ``texts`` as Orla's replies in ``key`` and store a trace for each (in one unit)."""
    async with repository.unit() as session:
        ids = await repository.deliveries.record(
            key.platform,
            key.chat_id,
            [Outgoing(text, character_id="orla", line_of="Orla Finch") for text in texts],
            account="",
            answers=None,
            process="test",
            session=session,
        )
        await repository.traces.add(
            key,
            [NewTrace(id, "orla", f'{{"text":"{text}"}}') for id, text in zip(ids, texts, strict=True)],
            session=session,
        )
    return ids


async def test_recent_lists_newest_first_with_text_and_state_and_pages_back(repository: Repository) -> None:
    first, second, third = await said(repository, GROUP, "Aye.", "The lamp is lit.", "Mind the gulls.")
    await said(repository, OTHER, "Elsewhere.")
    await repository.deliveries.settle([first], "posted")
    await repository.deliveries.settle([second], "dropped")

    listed = await repository.traces.recent(GROUP, limit=2)
    assert [(entry.delivery_id, entry.text, entry.state) for entry in listed] == [
        (third, "Mind the gulls.", "pending"),
        (second, "The lamp is lit.", "dropped"),
    ]
    assert listed[0].trace == '{"text":"Mind the gulls."}'
    assert (listed[0].platform, listed[0].chat_id, listed[0].character_id) == ("onebot", "100", "orla")
    older = await repository.traces.recent(GROUP, limit=2, before_id=second)
    assert [(entry.delivery_id, entry.state) for entry in older] == [(first, "posted")]


async def test_get_finds_a_trace_by_delivery_id_within_its_chat(repository: Repository) -> None:
    (reply,) = await said(repository, GROUP, "Aye.")
    assert await repository.traces.get(reply) == '{"text":"Aye."}'
    assert await repository.traces.get(reply, GROUP) == '{"text":"Aye."}'
    assert await repository.traces.get(reply, OTHER) is None, "not another chat's"
    assert await repository.traces.get(reply + 1000) is None
    entry = await repository.traces.entry(reply, GROUP)
    assert entry is not None
    assert (entry.text, entry.state) == ("Aye.", "pending")


async def test_delete_before_deletes_only_older_traces(repository: Repository) -> None:
    old, new = await said(repository, GROUP, "Long ago.", "Just now.")
    async with repository.unit() as session:
        await session.execute(
            update(Trace).where(Trace.delivery_id == old).values(created_at=utcnow() - timedelta(days=40))
        )
    assert await repository.traces.delete_before(utcnow() - timedelta(days=30)) == 1
    assert [entry.delivery_id for entry in await repository.traces.recent(GROUP)] == [new]
    assert await repository.deliveries.of_chat("onebot", "100") != [], "the replies themselves stay"


async def test_adding_nothing_costs_nothing(repository: Repository) -> None:
    await repository.traces.add(GROUP, [])
    assert await repository.traces.recent(GROUP) == []
