"""``/images on|off`` and ``/scene``: the character's screenshots."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.engine.screenshots import screenshot_image
from bot.errors import CommandError
from bot.messages import Reply


async def handle_images(context: CommandContext, args: str) -> Reply:
    choice = args.strip().casefold()
    if choice not in {"on", "off", "开", "关"}:
        state = await context.repository.chats.state(context.incoming.key)
        enabled = context.config.images.enabled if state.images_enabled is None else state.images_enabled
        raise CommandError(f"Screenshots are {'on' if enabled else 'off'} here. Usage: /images on|off")
    enabled = choice in {"on", "开"}
    await context.repository.chats.set_images_enabled(context.incoming.key, enabled)
    if enabled:
        return Reply("Screenshots on: a reply close to a classic line comes with its scene.")
    return Reply("Screenshots off for this chat.")


async def handle_scene(context: CommandContext, args: str) -> Reply:
    pack = context.active
    if not pack.screenshots:
        raise CommandError(f"{pack.name} has no screenshots.")
    if args:
        hit = await context.screenshots.best(pack, args)
        shot = hit.shot if hit is not None else None
    else:
        shot = context.screenshots.random(pack)
    if shot is None:
        raise CommandError(f"No screenshot of {pack.name} matches '{args}'.")
    image = await screenshot_image(shot, context.config.images, context.config.image_cache_dir)
    if image is None:
        raise CommandError("That screenshot cannot be read right now; the bot's log says why.")
    return Reply(f"「{shot.text}」", images=[image], character=pack.id)


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "images",
            "turn screenshots with replies on or off in this chat",
            handle_images,
            usage="on|off",
            level=Level.CHAT_ADMIN,
            aliases=("截图",),
        )
    )
    registry.add(
        Command(
            "scene",
            "the character's screenshot closest to the words (a random one without words)",
            handle_scene,
            usage="[words]",
            aliases=("场景",),
        )
    )
