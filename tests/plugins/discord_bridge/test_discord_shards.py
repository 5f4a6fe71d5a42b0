"""Several processes split Discord's servers: each runs the shards ``shard_ids`` of ``shard_count``."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.config import DiscordConfig, parse_config
from bot.errors import ConfigError
from bot.outbox import Outbox
from bot.router import Router
from plugins.discord_bridge import DiscordBridge


async def test_one_process_without_shard_settings_runs_a_plain_client(router: Router, outbox: Outbox) -> None:
    bridge = DiscordBridge(router, DiscordConfig(enabled=True), outbox=outbox)
    assert not isinstance(bridge.client, discord.AutoShardedClient)
    await bridge.client.close()


async def test_shard_settings_make_a_sharded_client_running_only_its_shards(
    router: Router, outbox: Outbox
) -> None:
    settings = DiscordConfig(enabled=True, shard_count=4, shard_ids=[1, 3])
    bridge = DiscordBridge(router, settings, outbox=outbox)
    client = bridge.client
    assert isinstance(client, discord.AutoShardedClient)
    assert (client.shard_count, client.shard_ids) == (4, [1, 3])
    await client.close()


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        ({"shard_ids": [0]}, "shard_ids: needs shard_count"),
        ({"shard_ids": [0, 2], "shard_count": 2}, "shard_ids: must name shards 0 to 1; [2] are not"),
        ({"shard_count": 0}, "shard_count: Input should be greater than or equal to 1"),
    ],
)
def test_wrong_shard_settings_are_refused_in_bot_toml(
    tmp_path: Path, shards: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"\[platforms\.discord\]") as caught:
        parse_config({"platforms": {"discord": shards}}, source=tmp_path / "bot.toml")
    assert message in str(caught.value)
