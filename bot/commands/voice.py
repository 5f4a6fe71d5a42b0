"""``/voice on|off|only``: the characters' replies as voice messages in this chat."""

from __future__ import annotations

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.engine.packs import CharacterPack
from bot.errors import CommandError, SpeechError
from bot.flow.speak import LANGUAGES
from bot.messages import Reply

CHOICES = {"on": "on", "off": "off", "only": "only", "开": "on", "关": "off", "仅": "only", "只": "only"}
SAID = {
    "on": "Voice on: replies come as text, then as a voice message.",
    "only": "Voice only: replies come as voice messages (as text when a voice cannot be made).",
    "off": "Voice off for this chat: text only.",
}


def sound_of(context: CommandContext, pack: CharacterPack) -> str:
    """How ``pack`` sounds, in a line: engine, voice, language, translation, recorded lines."""
    voice = pack.settings.voice
    language = voice.spoken_language(pack.settings.language)
    if context.speaker is None:
        return f"{pack.name} speaks {LANGUAGES.get(language, language)}."
    try:
        engine = context.speaker.engines.resolve(voice.engine, language)
    except SpeechError as exc:
        return f"{pack.name} cannot speak here yet: {exc}."
    if (why := engine.missing()) is not None:
        return f"{pack.name} cannot speak here yet: {why}."
    line = (
        f"{pack.name} speaks {LANGUAGES.get(language, language)} "
        f"({engine.name}, voice {voice.voice or engine.default_voice(language)})"
    )
    if voice.translate_to and voice.translate_to != pack.settings.language:
        line += ", a translation of what it writes"
    if pack.voices:
        line += f"; {len(pack.voices)} recorded lines of its own"
    return line + "."


async def handle_voice(context: CommandContext, args: str) -> Reply:
    mode = CHOICES.get(args.strip().casefold())
    key = context.incoming.key
    if mode is None:
        current = context.state.voice_mode or context.config.voice.mode
        raise CommandError(
            f"Voice is {current} here. {sound_of(context, context.active)}\nUsage: /voice on|off|only"
        )
    context.demand("/voice", Level.CHAT_ADMIN)
    await context.repository.chats.set_voice_mode(key, mode)
    if mode == "off":
        return Reply(SAID[mode])
    return Reply(f"{SAID[mode]}\n{sound_of(context, context.active)}")


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "voice",
            "voice messages with the characters' replies in this chat",
            handle_voice,
            usage="on|off|only",
            aliases=("语音",),
        )
    )
