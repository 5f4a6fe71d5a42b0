"""A gateway reconnect while a character is still writing does not lose the reply."""

from __future__ import annotations

import asyncio

import pytest

from bot.engine.model import Completion, EchoChatModel
from bot.engine.prompt import Prompt
from tests.support.discord_gateway import GUILD_ID, DiscordWorld, guild_create, ready


class HeldModel(EchoChatModel):
    """The echo model, holding each answer until :attr:`release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def complete(self, prompt: Prompt) -> Completion:
        self.started.set()
        await self.release.wait()
        return await super().complete(prompt)


@pytest.fixture
def model() -> HeldModel:
    return HeldModel()


async def test_a_reply_written_across_a_fresh_gateway_session_is_still_posted(
    world: DiscordWorld, model: HeldModel
) -> None:
    answering = asyncio.create_task(world.say(f"{world.mention()} is the lamp lit?"))
    await model.started.wait()

    # The gateway drops and Discord starts a new session: discord.py clears its caches and rebuilds
    # them from a fresh READY and GUILD_CREATE.
    before = world.client.get_guild(GUILD_ID)
    world.state.parsers["READY"](ready())
    assert world.client.get_guild(GUILD_ID) is not before, "the caches were rebuilt"
    world.state.parsers["GUILD_CREATE"](guild_create(manage_webhooks=True))

    model.release.set()
    (post,) = await asyncio.wait_for(answering, 5)
    assert post.json["username"] == "Orla Finch"
    assert post.response["content"].endswith("Orla Finch heard Pip: is the lamp lit?")
