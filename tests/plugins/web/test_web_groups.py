"""The Groups pages: every chat the bot knows with its character, settings, messages and today's
spending; one chat's memory, greeting and thirty days of usage; its settings changed through the
same storage calls the chat commands make."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from datetime import time as clock
from pathlib import Path

import httpx
import pytest

from bot.config import BotConfig, parse_config
from bot.governor import cost
from bot.messages import ChatKey
from bot.runtime import Runtime
from plugins.web import PREFIX, WebConsole
from tests.messages import group_message, private_message
from tests.packs import ORLA_CAPTIONS, write_pack, write_xiaoman
from tests.plugins.web.test_web_access import csrf_of, opened, runtime, serve

__all__ = ["runtime"]  # the fixture, shared with the access tests

GROUP = ChatKey("onebot", "100")
OTHER = ChatKey("onebot", "200")
PRIVATE = ChatKey("onebot", "private:42")
GROUP_PAGE = f"{PREFIX}/groups/onebot/100"


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    """The suite's config, with a price for the echo model so costs show."""
    write_pack(tmp_path / "characters", screenshots=ORLA_CAPTIONS)
    write_xiaoman(tmp_path / "characters")
    return parse_config(
        {
            "admins": {"superusers": ["onebot:1"]},
            "budgets": {"prices": {"echo": {"input": 1.0, "output": 2.0}}},
        },
        source=tmp_path / "bot.toml",
    )


@pytest.fixture
async def console(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[WebConsole, httpx.AsyncClient]]:
    """The console, logged in."""
    async with opened(config, runtime, monkeypatch, logged_in=True) as both:
        yield both


async def talk(runtime: Runtime) -> None:
    """Orla and 苏小满 talk in group 100, Orla in group 200 (last), and in a private chat."""
    router = runtime.router
    await router.handle(group_message("Orla, the storm is coming", group="100"))
    await router.handle(group_message("/switch 小满", group="100", user="1"))
    await router.handle(group_message("小满，来壶茶", group="100"))
    await router.handle(private_message("Orla, are you there?"))
    await router.handle(group_message("Orla, tie the boat twice", group="200"))


def row_of(html: str, chat_id: str) -> str:
    """The list's table row of ``chat_id``."""
    for row in re.findall(r"<tr>.*?</tr>", html, re.S):
        if f">{chat_id}</a>" in row:
            return str(row)
    raise AssertionError(f"no row for {chat_id}")


async def form(client: httpx.AsyncClient, path: str = GROUP_PAGE, **fields: str) -> httpx.Response:
    """Post one of the chat page's forms, with the page's CSRF token."""
    page = await client.get(GROUP_PAGE)
    return await client.post(f"{path}", data={"csrf": csrf_of(page.text), **fields})


async def test_the_list_shows_every_chat_with_its_character_counts_and_spending(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    repository = runtime.router.repository
    await repository.chats.set_images_enabled(ChatKey("discord", "quiet"), False)  # a row, no messages

    page = await client.get(f"{PREFIX}/groups")
    assert page.status_code == 200
    html = page.text
    assert "4 chats" in html
    ids = re.findall(r'href="/console/groups/[^"]+">([^<]+)</a>', html)
    assert ids[:3] == ["200", "private:42", "100"], "the most recently active first"
    assert ids[3] == "quiet", "a chat that never spoke comes last"

    today = runtime.router.governor.today()
    prices = runtime.config.budgets.prices
    for key, name, messages in ((GROUP, "苏小满", 4), (OTHER, "Orla Finch", 2), (PRIVATE, "Orla Finch", 2)):
        assert await repository.messages.count(key) == messages
        row = row_of(html, key.chat_id)
        assert name in row
        assert f'<td class="num">{messages}</td>' in row
        spent = await repository.usage.rows(today, today, key)
        tokens = sum(line.tokens for line in spent)
        assert tokens > 0
        assert f'<td class="num">{tokens:,}</td>' in row
        dollars = cost(spent, prices)
        assert dollars is not None
        assert f"${dollars:.4f}" in row
    assert "(default)" in row_of(html, "200"), "group 200 never chose a character"
    assert "(default)" not in row_of(html, "100").split("</td>")[2], "group 100 chose 苏小满"
    quiet = row_of(html, "quiet")
    assert "<td>off</td>" in quiet, "its own setting, not the default"
    assert '<td class="num">0</td>' in quiet
    assert 'href="/console/groups/onebot/private%3A42"' in html, "the chat id is quoted in the link"


async def test_the_list_is_paged_fifty_at_a_time(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    for number in range(55):
        await runtime.router.repository.chats.set_voice_mode(ChatKey("onebot", f"g{number:02d}"), "on")
    first = (await client.get(f"{PREFIX}/groups")).text
    assert first.count('href="/console/groups/onebot/') == 50
    assert "Page 1 of 2" in first
    second = (await client.get(f"{PREFIX}/groups", params={"page": "2"})).text
    assert second.count('href="/console/groups/onebot/') == 5
    for bad in ("0", "-1", "two"):
        assert (await client.get(f"{PREFIX}/groups", params={"page": bad})).status_code == 400


async def test_a_chat_page_shows_its_memory_greeting_and_a_month_of_usage(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    repository = runtime.router.repository
    await repository.summaries.save(GROUP, "orla", "Pip <fears> the storm & the boat.", 1)
    today = date.fromisoformat(runtime.router.governor.today())
    for back, tokens in ((3, 500), (12, 2000), (40, 9999)):  # the last is older than the chart
        day = (today - timedelta(days=back)).isoformat()
        await repository.usage.add(GROUP, "42", day, "echo", tokens, 0)
    await runtime.router.greetings.turn_on(GROUP, clock(8, 30), "", by="onebot:1")

    page = await client.get(GROUP_PAGE)
    assert page.status_code == 200
    html = page.text
    assert "苏小满 plays here" in html
    assert "Pip &lt;fears&gt; the storm &amp; the boat." in html, "the summary, escaped"
    orla, xiaoman = (
        re.search(rf"<tr>\s*<td>\s*<strong>{name}</strong>.*?</tr>", html, re.S)
        for name in ("Orla Finch", "苏小满")
    )
    assert orla is not None
    assert xiaoman is not None
    orla_count, orla_since = await repository.messages.character_memory(GROUP, "orla")
    assert orla_count == 2
    assert f'<td class="num">{orla_count}</td>' in orla.group(0)
    assert orla_since is not None
    assert orla_since.date().isoformat() in orla.group(0)
    assert "active" in xiaoman.group(0)
    assert "Every day at <strong>08:30</strong>" in html

    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    bars = re.findall(r'<rect class="bar" data-day="([0-9-]+)"', svg.group(0))
    shown = {(today - timedelta(days=back)).isoformat() for back in (0, 3, 12)}
    assert set(bars) == shown, "one bar per day with usage in the last 30 days"
    assert len(bars) == 3
    table = html.split("</svg>", 1)[1]
    assert "2,000" in table
    assert "9,999" not in table
    assert "$0.0020" in table, "2,000 prompt tokens at $1 a million"


async def test_private_and_odd_chat_ids_round_trip_through_their_links(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    odd = ChatKey("discord", "a/b?c#<i>x</i>")
    await runtime.router.repository.chats.set_images_enabled(odd, True)
    await runtime.router.handle(private_message("Orla, hello"))
    html = (await client.get(f"{PREFIX}/groups")).text
    assert "&lt;i&gt;x&lt;/i&gt;" in html
    assert "<i>x</i>" not in html
    for key, kind, action in (
        (odd, "Group", "/console/groups/discord/a%2Fb%3Fc%23%3Ci%3Ex%3C%2Fi%3E/images"),
        (PRIVATE, "Private chat", "/console/groups/onebot/private%3A42/images"),
    ):
        href = re.search(rf'href="({PREFIX}/groups/{key.platform}/[^"]+)"', html)
        assert href is not None
        page = await client.get(href.group(1))
        assert page.status_code == 200, key
        assert kind in page.text
        assert f'action="{action}"' in page.text, "its forms post to the same quoted path"
    assert (
        'action="/console/groups/onebot/private%3A42/chattiness"'
        not in (await client.get(f"{PREFIX}/groups/onebot/private:42")).text
    ), "chattiness is for groups"
    assert (await client.get(f"{PREFIX}/groups/onebot/nobody")).status_code == 404


async def test_each_setting_changes_what_the_commands_change(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    chats = runtime.router.repository.chats
    steps = [
        ("images", {"value": "off"}, "images_enabled", False),
        ("images", {"value": "default"}, "images_enabled", None),
        ("voice", {"value": "only"}, "voice_mode", "only"),
        ("chattiness", {"value": "25"}, "chattiness", 0.25),
        ("debounce", {"value": "3.5"}, "debounce_s", 3.5),
    ]
    for name, fields, attribute, value in steps:
        done = await form(client, f"{GROUP_PAGE}/{name}", **fields)
        assert done.status_code == 303, (name, done.text)
        assert done.headers["location"] == f"{GROUP_PAGE}?saved={name}"
        assert getattr(await chats.state(GROUP), attribute) == value, name
    page = await client.get(f"{GROUP_PAGE}?saved=debounce")
    assert "Saved: Debounce." in page.text
    (said,) = await runtime.router.handle(group_message("/debounce", group="100", user="1"))
    assert "3.5s" in said.text, "the chat command sees the console's change"

    for name, attribute in (("chattiness", "chattiness"), ("debounce", "debounce_s")):
        back = await form(client, f"{GROUP_PAGE}/{name}", value="", default="1")
        assert back.status_code == 303
        assert getattr(await chats.state(GROUP), attribute) is None, "back to the config's"

    assert (await form(client, f"{GROUP_PAGE}/voice", value="default")).status_code == 303
    assert (await chats.state(GROUP)).voice_mode is None


async def test_training_export_is_shown_and_changed_as_the_command_changes_it(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    chats = runtime.router.repository.chats
    page = (await client.get(GROUP_PAGE)).text
    assert 'Training export <span class="muted">now off' in page, "off until a chat admin turns it on"
    assert f'action="{GROUP_PAGE}/training"' in page

    done = await form(client, f"{GROUP_PAGE}/training", value="on")
    assert (done.status_code, done.headers["location"]) == (303, f"{GROUP_PAGE}?saved=training")
    assert await chats.training(GROUP)
    assert not await chats.training(OTHER), "only that chat"
    page = (await client.get(f"{GROUP_PAGE}?saved=training")).text
    assert "Saved: Training export." in page
    assert 'Training export <span class="muted">now on' in page
    (said,) = await runtime.router.handle(group_message("/training", group="100"))
    assert said.text.startswith("Training export is on here"), "the chat command sees the console's change"
    listed = (await client.get(f"{PREFIX}/groups")).text
    row = next(line for line in listed.split("<tr>") if f"{GROUP_PAGE}\"" in line)
    assert "<td>on</td>" in row, "the list shows which chats consented"

    refused = await form(client, f"{GROUP_PAGE}/training", value="default")
    assert refused.status_code == 400
    assert "Training export: choose one of on, off." in refused.text
    assert await chats.training(GROUP), "a refused value changes nothing"
    assert (await form(client, f"{GROUP_PAGE}/training", value="off")).status_code == 303
    assert not await chats.training(GROUP)


async def test_forgetting_a_character_is_what_forget_does(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    messages = runtime.router.repository.messages
    assert (await messages.character_memory(GROUP, "orla"))[0] == 2
    done = await form(client, f"{GROUP_PAGE}/forget", character="orla", sure="1")
    assert (done.status_code, done.headers["location"]) == (303, f"{GROUP_PAGE}?saved=forget")
    assert (await messages.character_memory(GROUP, "orla"))[0] == 0
    assert (await messages.character_memory(GROUP, "xiaoman"))[0] == 2, "other characters keep theirs"
    assert (await messages.character_memory(OTHER, "orla"))[0] == 2, "other chats keep theirs"


REFUSED = [
    ("chattiness", {"value": "lots"}, "is not a number"),
    ("chattiness", {"value": "150"}, "is not between 0 and 100"),
    ("chattiness", {"value": "nan"}, "is not between 0 and 100"),
    ("debounce", {"value": "61"}, "is not between 0 and 60"),
    ("debounce", {"value": "-1"}, "is not between 0 and 60"),
    ("images", {"value": "maybe"}, "choose one of on, off, default"),
    ("voice", {"value": "loud"}, "choose one of on, off, only, default"),
    ("forget", {"character": "nobody"}, "no character"),
]


async def test_bad_values_are_refused_with_a_message(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    repository = runtime.router.repository
    before = await repository.chats.state(GROUP)
    for name, fields, problem in REFUSED:
        refused = await form(client, f"{GROUP_PAGE}/{name}", **fields)
        assert refused.status_code == 400, (name, fields)
        assert problem in refused.text, (name, fields)
        assert 'role="alert"' in refused.text, "the page again, with the problem on it"
    assert await repository.chats.state(GROUP) == before
    assert (await repository.messages.character_memory(GROUP, "orla"))[0] == 2


async def test_chattiness_is_refused_in_a_private_chat(
    console: tuple[WebConsole, httpx.AsyncClient], runtime: Runtime
) -> None:
    _web, client = console
    await talk(runtime)
    path = f"{PREFIX}/groups/onebot/private%3A42/chattiness"
    refused = await form(client, path, value="50")
    assert refused.status_code == 400
    assert "Chattiness is for groups" in refused.text


async def test_changes_need_the_csrf_token_and_a_session(
    console: tuple[WebConsole, httpx.AsyncClient], config: BotConfig, runtime: Runtime
) -> None:
    web, client = console
    await talk(runtime)
    chats = runtime.router.repository.chats
    for name, fields in (("images", {"value": "off"}), ("forget", {"character": "orla"})):
        forged = await client.post(f"{GROUP_PAGE}/{name}", data={"csrf": "guessed", **fields})
        assert forged.status_code == 403, name
    assert (await chats.state(GROUP)).images_enabled is None
    assert (await runtime.router.repository.messages.character_memory(GROUP, "orla"))[0] == 2
    async with serve(web) as stranger:
        assert (await stranger.post(f"{GROUP_PAGE}/images", data={"value": "off"})).status_code == 401
        seen = await stranger.get(GROUP_PAGE)
        assert seen.status_code == 303
        assert seen.headers["location"].startswith(f"{PREFIX}/login?next=")
    assert (await chats.state(GROUP)).images_enabled is None
