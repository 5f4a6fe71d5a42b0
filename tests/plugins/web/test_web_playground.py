"""The playground: members made up in the browser talk to the characters through the real router,
and see the replies with their screenshots, voices and a link to why they were said."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.config import BotConfig
from bot.messages import ChatKey
from bot.runtime import Runtime
from plugins.web import PREFIX
from tests.packs import ORLA_CAPTIONS
from tests.plugins.web.test_web_access import csrf_of, opened, runtime

__all__ = ["runtime"]  # the fixture, shared with the access tests


@pytest.fixture
async def client(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with opened(config, runtime, monkeypatch, logged_in=True) as (_console, client):
        yield client


async def say(client: httpx.AsyncClient, text: str, member: str = "Pip", **form: str) -> str:
    page = await client.get(f"{PREFIX}/play", params={"member": member, **form})
    fields = {
        "csrf": csrf_of(page.text),
        "chat": "playground",
        "kind": "group",
        "member": member,
        "to_me": "on",
    }
    done = await client.post(f"{PREFIX}/play", data={**fields, **form, "text": text})
    assert done.status_code == 303
    return (await client.get(done.headers["location"])).text


async def test_two_members_talk_to_two_characters_and_see_the_screenshot(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    page = await say(client, ORLA_CAPTIONS[1])
    assert "Orla Finch heard Pip: " + ORLA_CAPTIONS[1] in page
    (image,) = re.findall(r'<img src="([^"]+)"', page)
    shot = await client.get(image.replace("&amp;", "&"))
    assert shot.status_code == 200
    assert shot.headers["content-type"].startswith("image/")
    assert re.search(rf'href="{PREFIX}/inspect/\d+">why\?</a>', page)

    page = await say(client, "小满，来壶茶", member="Tam")
    assert "苏小满 heard Tam: 来壶茶" in page, "a second member calls the other character by name"
    stored = await runtime.router.repository.messages.count(ChatKey("console-web", "playground"))
    assert stored == 4, "the playground chat keeps its memory like any group"


async def test_commands_work_as_in_a_group(client: httpx.AsyncClient) -> None:
    page = await say(client, "/switch xiaoman")
    assert "Active character here: <strong>苏小满</strong>" in page


async def test_media_comes_only_from_the_packs_and_data_folders(
    client: httpx.AsyncClient, config: BotConfig
) -> None:
    assert (await client.get(f"{PREFIX}/media", params={"path": "/etc/passwd"})).status_code == 404
    sneaky = str(config.characters_dir / ".." / "bot.toml")
    assert (await client.get(f"{PREFIX}/media", params={"path": sneaky})).status_code == 404
    avatar_free = config.characters_dir / "orla" / "character.toml"
    assert (await client.get(f"{PREFIX}/media", params={"path": str(avatar_free)})).status_code == 200


async def test_with_voice_on_a_reply_is_heard_in_the_page(client: httpx.AsyncClient) -> None:
    page = await say(client, "/voice only", member="Pip", chat="voices")
    assert "Voice only" in page
    page = await say(client, "Is the lamp lit?", member="Pip", chat="voices")
    (audio,) = re.findall(r'<audio controls preload="none" src="([^"]+)"', page)
    heard = await client.get(audio.replace("&amp;", "&"))
    assert heard.status_code == 200
    assert heard.headers["content-type"] == "audio/mpeg", "espeak-ng's voice, encoded as MP3"
    assert len(heard.content) > 1000
