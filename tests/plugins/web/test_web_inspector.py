"""The inspector: for a reply made in the playground (or any chat), the scenes retrieved with their
scores, the prompt's parts against their budgets, the model and the reply check's verdict."""

from __future__ import annotations

import html
import re

import httpx

from bot.runtime import Runtime
from plugins.web import PREFIX
from tests.packs import ORLA_CAPTIONS
from tests.plugins.web.test_web_access import runtime
from tests.plugins.web.test_web_playground import client, say

__all__ = ["client", "runtime"]  # fixtures shared with the playground tests


async def test_a_reply_shows_the_scenes_it_was_made_from(client: httpx.AsyncClient, runtime: Runtime) -> None:
    page = await say(client, ORLA_CAPTIONS[1])
    link = re.search(rf'href="({PREFIX}/inspect/(\d+))">why\?</a>', page)
    assert link is not None
    inspected = html.unescape((await client.get(link.group(1))).text)
    trace = await runtime.router.repository.traces.entry(int(link.group(2)))
    assert trace is not None
    assert f"“{trace.text}”" in inspected
    assert "Model</dt><dd>echo" in inspected
    assert "stayed in character" in inspected
    rows = re.findall(r"<summary>(\d+)</summary>", inspected)
    assert rows, "the retrieved scenes are listed"
    assert rows[0] == "002", "the scene with Barnacle's line ranks first"
    assert "Orla:「Barnacle has taste. Your fish does not.」" in inspected, "each scene's text opens in place"
    for part in ("persona", "scenes", "history", "message"):
        assert re.search(rf"<td>{part}</td><td class=\"num\">\d+</td>", inspected), part
    assert f"Screenshot</dt><dd>“{ORLA_CAPTIONS[1]}” (similarity" in inspected

    listed = (
        await client.get(f"{PREFIX}/replies", params={"platform": "console-web", "chat": "playground"})
    ).text
    assert f'href="{PREFIX}/inspect/{link.group(2)}"' in listed


async def test_an_unknown_reply_is_a_404(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{PREFIX}/inspect/999999")).status_code == 404
    assert (await client.get(f"{PREFIX}/inspect/not-a-number")).status_code == 404
    assert (await client.get(f"{PREFIX}/replies")).status_code == 400
