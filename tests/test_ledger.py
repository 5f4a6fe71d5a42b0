"""The ledger: replies recorded before they are posted, settled by the sender, resent once after a
restart, and a character's line that was never posted left out of its history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import SendingConfig
from bot.errors import SendError
from bot.ledger import Ledger
from bot.messages import ChatKey, Reply, Voice
from bot.router import Router
from bot.sending import SendQueue
from storage import Database, Repository
from storage.claims import Claim
from tests.messages import group_message

GROUP = ChatKey("onebot", "100")


def ledger(repository: Repository, process: str = "now", resend_within_s: float = 600) -> Ledger:
    return Ledger(repository.deliveries, process=process, resend_within_s=resend_within_s)


def line(text: str) -> Reply:
    """What Orla says, as the router hands it on."""
    return Reply(text, character="orla", in_history=True)


async def history(repository: Repository) -> list[str]:
    return [message.text for message in await repository.messages.recent(GROUP, "orla", limit=50)]


@pytest.mark.both_databases
async def test_the_queue_settles_each_reply_and_lines_never_posted_leave_the_history(
    repository: Repository,
) -> None:
    said = ledger(repository)

    async def post(_key: ChatKey, reply: Reply) -> None:
        if "refused" in reply.text:
            raise SendError("OneBot refused it (retcode 1200: rate limited)")

    queue = SendQueue(post, SendingConfig(min_gap_s=0, max_retries=0, retry_s=0), ledger=said)
    lit, refused, storm, again, who = (
        line("The lamp is lit."),
        line("refused, every time"),
        line("Storm tonight."),
        line("Storm tonight."),
        Reply("/who"),
    )
    replies = [lit, refused, storm, again, who]
    await said.record(GROUP, replies, answers="m1", names={"orla": "Orla Finch"})
    assert all(reply.delivery_id is not None for reply in replies)
    assert len(await history(repository)) == 4

    for pile in ([lit], [refused], [storm, again], [who]):
        for reply in pile:
            queue.post_later(GROUP, reply)
        await queue.join()
    assert await repository.deliveries.of_chat(GROUP.platform, GROUP.chat_id) == [
        ("The lamp is lit.", "posted"),
        ("refused, every time", "failed"),
        ("Storm tonight.", "posted"),
        ("Storm tonight.", "dropped"),  # piled up behind the same text: merged into one post
        ("/who", "posted"),
    ]
    assert await history(repository) == ["The lamp is lit.", "Storm tonight."], "what the chat saw"
    await queue.aclose()


@pytest.mark.both_databases
async def test_after_a_restart_young_replies_are_resent_once_and_old_ones_expire(
    repository: Repository,
) -> None:
    before = ledger(repository, process="before-the-crash")
    await before.record(GROUP, [line("Old news.")], account="10000", answers="m1")
    await before.record(ChatKey("onebot", "200"), [line("Fresh news.")], account="10000", answers="m2")
    await before.record(GROUP, [line("Another account's.")], account="20000", answers="m3")

    resent: list[tuple[ChatKey, Reply]] = []

    async def send(key: ChatKey, reply: Reply) -> None:
        resent.append((key, reply))

    strict = ledger(repository, process="after", resend_within_s=0)
    assert await strict.resend("onebot", "10000", send) == 0, "everything is older than 0 s"
    states = await repository.deliveries.of_chat("onebot", "100")
    assert states == [("Old news.", "expired"), ("Another account's.", "pending")]

    fresh = Reply("Still fresh.", character="orla", quote=True)
    await before.record(GROUP, [fresh], account="10000", answers="9")
    after = ledger(repository, process="after")
    assert await after.resend("onebot", "10000", send) == 1
    ((key, reply),) = resent
    assert (key, reply.text, reply.reply_to, reply.character) == (GROUP, "Still fresh.", "9", "orla")
    assert await after.resend("onebot", "10000", send) == 0, "nothing is posted twice"
    assert await history(repository) == ["Another account's."], "an expired line was never said"


@pytest.mark.both_databases
async def test_a_process_that_connects_leaves_a_live_processes_replies_to_it(
    repository: Repository,
) -> None:
    stopped = ledger(repository, process="stopped")
    await stopped.record(GROUP, [line("Left behind by a crash.")], account="10000", answers="m1")
    busy = ledger(repository, process="busy")
    joining = ledger(repository, process="joining")
    await busy.record(GROUP, [line("Being posted right now.")], account="10000", answers="m2")

    resent: list[Reply] = []

    async def send(_key: ChatKey, reply: Reply) -> None:
        resent.append(reply)

    assert await joining.resend("onebot", "10000", send) == 1
    assert [reply.text for reply in resent] == ["Left behind by a crash."]
    assert await repository.deliveries.of_chat("onebot", "100") == [
        ("Left behind by a crash.", "pending"),
        ("Being posted right now.", "pending"),
    ], "the busy process still posts its own reply, once"


async def test_a_claimed_message_whose_reply_never_went_out_is_answered_again(
    repository: Repository,
) -> None:
    said = ledger(repository)
    now = timedelta(0)
    assert await repository.claims.claim(GROUP, "77", by="crashed") is Claim.NEW
    assert await repository.claims.claim(GROUP, "77", by="other") is Claim.TAKEN, "the claimer may be busy"
    assert await repository.claims.claim(GROUP, "77", by="other", busy=now) is Claim.RETRY

    reply = line("Answered.")
    await said.record(GROUP, [reply], answers="77")
    assert await repository.claims.claim(GROUP, "77", by="third", busy=now) is Claim.TAKEN
    await said.settle([reply], "failed", "refused")
    assert await repository.claims.claim(GROUP, "77", by="third", busy=now) is Claim.RETRY


async def test_a_message_left_unanswered_by_a_killed_process_is_answered_once_restarted(
    router: Router, repository: Repository, database: Database
) -> None:
    """The process died after storing the message, before the model answered; the platform sends the
    event again: it is answered now, and stored once."""
    message = group_message("is the lamp lit?", to_me=True)
    assert message.message_id is not None
    await repository.claims.claim(GROUP, message.message_id, by="killed-process")
    await repository.messages.add(
        GROUP,
        role="user",
        character_id="orla",
        user_id="42",
        user_name="Pip",
        text="is the lamp lit?",
        platform_message_id=message.message_id,
    )
    database.hold_alone()
    (reply,) = await router.handle(message)
    assert reply.text == "Orla Finch heard Pip: is the lamp lit?"
    assert [m.text for m in await repository.messages.recent(GROUP, "orla", limit=10)] == [
        "is the lamp lit?",
        reply.text,
    ]
    assert await router.handle(message) == [], "answered now: a third delivery is not answered again"


@pytest.mark.both_databases
async def test_a_voice_is_recorded_with_its_reply_and_resent_with_it(repository: Repository) -> None:
    before = ledger(repository, process="before-the-crash")
    follow = Reply(
        "灯りはついている。", character="orla", voice=Voice(Path("/v/lamp.mp3"), 1.2), voice_only=True
    )
    spoken = line("The lamp is lit.")
    await before.record(GROUP, [follow, spoken], account="10000")
    spoken.voice, spoken.voice_only = Voice(Path("/v/lit.ogg"), 0.9), True
    await before.give_voice(spoken)  # /voice only: the voice came after the text was recorded

    resent: list[Reply] = []

    async def send(_key: ChatKey, reply: Reply) -> None:
        resent.append(reply)

    assert await ledger(repository, process="after").resend("onebot", "10000", send) == 2
    assert [(r.text, r.voice and r.voice.path, r.voice_only) for r in resent] == [
        ("灯りはついている。", Path("/v/lamp.mp3"), True),
        ("The lamp is lit.", Path("/v/lit.ogg"), True),
    ]
