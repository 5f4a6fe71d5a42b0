"""The paced send queue: bursts spread out, piled-up replies merged (each text once), long replies
split or drawn, refusals retried and, failing that, kept."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest

from bot.config import SendingConfig
from bot.errors import AccountAway, SendError
from bot.messages import ChatKey, Image, Reply, Voice
from bot.pictures import find_font
from bot.sending import Senders, SendQueue, parts_of

GROUP = ChatKey("onebot", "100")


class Platform:
    """Records every post with its time; refuses the first ``refusals`` posts."""

    def __init__(self, refusals: int = 0) -> None:
        self.posts: list[tuple[float, ChatKey, Reply]] = []
        self.refusals = refusals
        self.tries = 0

    async def post(self, key: ChatKey, reply: Reply) -> None:
        self.tries += 1
        if self.refusals:
            self.refusals -= 1
            raise SendError("OneBot refused it (retcode 1200: rate limited)")
        self.posts.append((asyncio.get_running_loop().time(), key, reply))

    @property
    def texts(self) -> list[str]:
        return [reply.text for _at, _key, reply in self.posts]


def settings(**values: object) -> SendingConfig:
    return SendingConfig.model_validate({"min_gap_s": 0.02, "burst": 3, "retry_s": 0.01, **values})


async def test_a_burst_of_fifty_replies_is_spread_out_and_none_is_lost() -> None:
    platform = Platform()
    queue = SendQueue(platform.post, settings(min_gap_s=0.02, burst=3))
    sent = [queue.put(ChatKey("onebot", str(group)), Reply(f"answer {group}")) for group in range(50)]
    await asyncio.gather(*sent)
    assert sorted(platform.texts) == sorted(f"answer {group}" for group in range(50))
    times = [at for at, _key, _reply in platform.posts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap < 0.015 for gap in gaps[:2]), "the burst goes at once"
    assert min(gaps[3:]) >= 0.015, "then one message per gap"
    assert times[-1] - times[0] >= 0.02 * (50 - 3) * 0.9
    await queue.aclose()


async def test_replies_to_one_group_that_pile_up_go_as_one_message() -> None:
    platform = Platform()
    queue = SendQueue(platform.post, settings(min_gap_s=0.05, burst=1))
    first = queue.put(GROUP, Reply("one"))
    await first
    waiting = [queue.put(GROUP, Reply(text)) for text in ("two", "three", "four")]
    elsewhere = queue.put(ChatKey("onebot", "200"), Reply("other group"))
    await asyncio.gather(*waiting, elsewhere)
    assert platform.texts == ["one", "two\nthree\nfour", "other group"]
    await queue.aclose()


async def test_a_reply_is_posted_even_when_the_chat_just_heard_the_same_text() -> None:
    """Two members answered alike (the same deflection line) each get their answer."""
    platform = Platform()
    queue = SendQueue(platform.post, settings(min_gap_s=0))
    for text in ("Aye.", "Aye.", "Storm's coming.", "Aye."):
        await queue.send(GROUP, Reply(text))
    assert platform.texts == ["Aye.", "Aye.", "Storm's coming.", "Aye."]
    await queue.aclose()


async def test_replies_piled_up_behind_the_same_text_are_merged_into_it_once() -> None:
    platform = Platform()
    queue = SendQueue(platform.post, settings(min_gap_s=0.05, burst=1))
    await queue.send(GROUP, Reply("one"))
    waiting = [queue.put(GROUP, Reply(text)) for text in ("Aye.", "Storm's coming.", "Aye.")]
    await asyncio.gather(*waiting)
    assert platform.texts == ["one", "Aye.\nStorm's coming."]
    await queue.aclose()


def test_a_long_reply_is_split_at_sentence_ends_into_at_most_max_parts() -> None:
    sentence = "The lamp needs oil before the storm comes in from the west. "
    reply = Reply(sentence * 12, images=[Image(Path("shot.png"))], character="orla")
    parts = parts_of(reply, settings(part_chars=130, max_parts=3))
    assert len(parts) == 3
    assert all(len(part.text) <= 130 for part in parts)
    assert parts[0].text.endswith("west.")
    assert parts[-1].text.endswith("…")
    assert [len(part.images) for part in parts] == [1, 0, 0], "the screenshot goes with the first part"
    assert [part.quote for part in parts] == [True, False, False]


def test_a_voice_goes_with_the_last_part_and_a_voice_alone_is_never_split() -> None:
    sentence = "The lamp needs oil before the storm comes in from the west. "
    voice = Voice(Path("lamp.mp3"), 4.0)
    parts = parts_of(Reply(sentence * 4, character="orla", voice=voice), settings(part_chars=130))
    assert [part.voice for part in parts] == [None, voice]
    alone = Reply(sentence * 4, character="orla", voice=voice, voice_only=True)
    assert parts_of(alone, settings(part_chars=130)) == [alone], "its text is not posted"


async def test_a_voice_piled_up_behind_text_is_posted_on_its_own() -> None:
    platform = Platform()
    queue = SendQueue(platform.post, settings(min_gap_s=0.05, burst=1))
    await queue.send(GROUP, Reply("one"))
    voice = Reply("はい。", voice=Voice(Path("yes.mp3"), 1.0), voice_only=True)
    await asyncio.gather(
        queue.put(GROUP, Reply("two")), queue.put(GROUP, voice), queue.put(GROUP, Reply("three"))
    )
    assert [(reply.text, reply.voice) for _at, _key, reply in platform.posts] == [
        ("one", None),
        ("two", None),
        ("はい。", voice.voice),
        ("three", None),
    ]
    await queue.aclose()


async def test_a_refused_post_is_retried_then_posted() -> None:
    platform = Platform(refusals=2)
    queue = SendQueue(platform.post, settings(max_retries=3))
    await queue.send(GROUP, Reply("Aye."))
    assert (platform.tries, platform.texts) == (3, ["Aye."])
    await queue.aclose()


async def test_a_post_refused_every_time_is_kept_and_reported(tmp_path: Path) -> None:
    platform = Platform(refusals=10)
    queue = SendQueue(platform.post, settings(max_retries=2), failed_log=tmp_path / "failed_sends.jsonl")
    with pytest.raises(SendError, match="retcode 1200"):
        await queue.send(GROUP, Reply("Lost at sea?", character="orla"))
    (kept,) = [json.loads(line) for line in (tmp_path / "failed_sends.jsonl").read_text().splitlines()]
    assert (kept["chat_id"], kept["text"], kept["character"]) == ("100", "Lost at sea?", "orla")
    assert platform.tries == 3
    platform.refusals = 0
    await queue.send(GROUP, Reply("the next one goes"))
    assert platform.texts == ["the next one goes"]
    await queue.aclose()


async def test_a_long_reply_is_drawn_as_one_picture_when_a_font_covers_it(tmp_path: Path) -> None:
    font = find_font("The lamp needs oil")
    if font is None:
        pytest.skip("no font with Latin letters on this machine")
    platform = Platform()
    queue = SendQueue(
        platform.post,
        settings(long_reply="image", part_chars=40, font=str(font)),
        image_dir=tmp_path / "replies",
    )
    await queue.send(GROUP, Reply("The lamp needs oil before the storm. " * 5))
    ((_at, _key, posted),) = platform.posts
    assert posted.text == ""
    assert posted.images[0].path.read_bytes().startswith(b"\x89PNG")
    await queue.aclose()


def test_a_font_is_only_chosen_when_it_has_every_character(tmp_path: Path) -> None:
    assert find_font("小满的面馆", dirs=[tmp_path]) is None


async def test_closing_waits_for_the_reply_being_posted() -> None:
    posted: list[str] = []
    started = asyncio.Event()

    async def slow_post(_key: ChatKey, reply: Reply) -> None:
        started.set()
        await asyncio.sleep(0.05)
        posted.append(reply.text)

    queue = SendQueue(slow_post, settings())
    queue.put(GROUP, Reply("the last word"))
    await started.wait()
    await queue.join()
    await queue.aclose()
    assert posted == ["the last word"]


class Account:
    """A platform account that can drop its connection: posts raise :class:`AccountAway` meanwhile."""

    def __init__(self) -> None:
        self.connected = True
        self.posted: list[str] = []

    async def post(self, _key: ChatKey, reply: Reply) -> None:
        if not self.connected:
            raise AccountAway("OneBot account 10000 is not connected")
        self.posted.append(reply.text)


async def test_the_queue_outlives_an_unexpected_error_in_a_post(tmp_path: Path) -> None:
    posted: list[str] = []

    async def post(_key: ChatKey, reply: Reply) -> None:
        if reply.text == "boom":
            raise RuntimeError("a bug in the platform glue")
        posted.append(reply.text)

    queue = SendQueue(post, settings(), failed_log=tmp_path / "failed_sends.jsonl")
    with pytest.raises(SendError, match="unexpectedly"):
        await queue.send(GROUP, Reply("boom"))
    await queue.send(GROUP, Reply("still here"))
    assert posted == ["still here"]
    (kept,) = (tmp_path / "failed_sends.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(kept)["text"] == "boom"
    await queue.aclose()


async def test_replies_wait_for_their_account_to_come_back_then_go_out_in_order() -> None:
    account = Account()
    account.connected = False
    queue = SendQueue(account.post, settings())
    first, second = queue.put(GROUP, Reply("first")), queue.put(ChatKey("onebot", "7"), Reply("second"))
    sent = asyncio.gather(first, second)
    await asyncio.sleep(0.2)
    assert account.posted == [], "nothing is posted while the account is away, and nothing is lost"
    account.connected = True
    queue.resume()
    await asyncio.wait_for(sent, 1)
    assert account.posted == ["first", "second"]
    await queue.aclose()


async def test_a_reply_whose_account_stays_away_is_kept_as_failed(tmp_path: Path) -> None:
    account = Account()
    account.connected = False
    queue = SendQueue(account.post, settings(away_wait_s=0.2), failed_log=tmp_path / "failed_sends.jsonl")
    with pytest.raises(AccountAway):
        await asyncio.wait_for(queue.send(GROUP, Reply("into the void")), 2)
    (kept,) = (tmp_path / "failed_sends.jsonl").read_text(encoding="utf-8").splitlines()
    assert "not connected" in json.loads(kept)["error"]
    await queue.aclose()


async def test_stopping_waits_at_most_shutdown_s_for_an_account_that_is_away(tmp_path: Path) -> None:
    account = Account()
    account.connected = False
    senders = Senders(settings(shutdown_s=0.2), tmp_path)
    waiting = senders.queue("onebot", "10000", account.post).put(GROUP, Reply("left for after the restart"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(senders.aclose(), 5)
    assert loop.time() - started < 1
    with pytest.raises(SendError, match="stopped before posting"):
        await waiting
