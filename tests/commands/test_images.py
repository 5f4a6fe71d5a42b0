from __future__ import annotations

from PIL import Image

from bot.flow.cooldown import ChatCooldown
from bot.messages import Role
from bot.router import Router
from tests.messages import group_message
from tests.packs import ORLA_CAPTIONS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_reply_close_to_a_captioned_line_carries_its_screenshot(router: Router) -> None:
    (reply,) = await router.handle(group_message("Barnacle has taste. Your fish does not.", to_me=True))
    assert len(reply.images) == 1
    assert reply.images[0].caption == ORLA_CAPTIONS[1]
    with Image.open(reply.images[0].path) as image:
        image.verify()
    (plain,) = await router.handle(group_message("how is the weather?", group="200", to_me=True))
    assert plain.images == []


async def test_cooldown_spaces_screenshots_per_chat(router: Router) -> None:
    clock = Clock()
    router.answerer.cooldown = ChatCooldown(60, clock=clock)
    line = ORLA_CAPTIONS[0]
    assert len((await router.handle(group_message(line, to_me=True)))[0].images) == 1
    assert (await router.handle(group_message(line, to_me=True)))[0].images == []
    assert len((await router.handle(group_message(line, group="other", to_me=True)))[0].images) == 1
    clock.now += 61
    assert len((await router.handle(group_message(line, to_me=True)))[0].images) == 1


async def test_images_off_needs_an_admin_and_stops_screenshots(router: Router) -> None:
    router.answerer.cooldown = ChatCooldown(0)
    refused = await router.handle(group_message("/images off"))
    assert refused[0].text == "/images is for group admins only."
    done = await router.handle(group_message("/images off", role=Role.OWNER))
    assert done[0].text == "Screenshots off for this chat."
    assert (await router.handle(group_message(ORLA_CAPTIONS[0], to_me=True)))[0].images == []
    status = await router.handle(group_message("/images", role=Role.ADMIN))
    assert status[0].text == "Screenshots are off here. Usage: /images on|off"
    await router.handle(group_message("/images on", role=Role.ADMIN))
    assert len((await router.handle(group_message(ORLA_CAPTIONS[0], to_me=True)))[0].images) == 1


async def test_scene_sends_the_closest_or_a_random_screenshot(router: Router) -> None:
    (reply,) = await router.handle(group_message("/scene Barnacle fish"))
    assert reply.text == f"「{ORLA_CAPTIONS[1]}」"
    assert reply.images[0].caption == ORLA_CAPTIONS[1]
    (random_reply,) = await router.handle(group_message("/scene"))
    assert random_reply.images[0].caption in ORLA_CAPTIONS
    await router.handle(group_message("/switch xiaoman"))
    (none,) = await router.handle(group_message("/scene 茶"))
    assert none.text == "苏小满 has no screenshots."
    assert none.images == []
