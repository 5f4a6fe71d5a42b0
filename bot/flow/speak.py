"""Speak: a character's reply as a voice message, after its text has been recorded.

A chat's ``/voice`` mode decides (``[voice] mode`` until its admins say otherwise):

* ``on``: the text is posted as always; the voice is made beside it, off the chat's turn, and
  follows once the text is out (a reply of its own, recorded like every reply);
* ``only``: the voice is made first and posted alone; the text stays in the record and the
  character's history, and is posted instead when no voice comes in ``[voice] timeout_s``;
* ``off``: text.

The voice of a reply is, in this order: the character's own recorded line when the reply says it
again (:class:`~bot.engine.screenshots.ClipMatcher`, with its own cooldown), audio cached for the same
engine, voice and words, or speech made now. When the pack speaks another language than it writes
(``[voice] translate_to``), the chat model translates the reply first, and the chat pays those
tokens like any others. Only a character's own lines are spoken, never notices or apologies.

Nothing here ever fails a reply: an engine that is missing, refuses or is too slow costs the voice,
with one log line per chat and problem.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config.voice import VoiceMode
from bot.engine.prompt import Prompt, PromptTokens, Turn
from bot.engine.replies import split_message
from bot.engine.screenshots import ClipMatcher
from bot.errors import BotError
from bot.flow.cooldown import ChatCooldown
from bot.messages import ChatKey, Incoming, Reply, Voice
from bot.voice.audio import Encoder, VoiceCache
from bot.voice.engines import Engines
from storage.cache import TTLCache

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.engine.embedder import Embedder
    from bot.engine.model import ChatModel
    from bot.engine.packs import CharacterPack
    from bot.engine.prompt import TokenCounter
    from bot.engine.registry import PackRegistry
    from bot.governor import Governor
    from bot.ledger import Ledger
    from bot.outbox import Outbox
    from storage import ChatState, Repository

log = logging.getLogger(__name__)

MODES: dict[str, VoiceMode] = {"off": "off", "on": "on", "only": "only"}
LANGUAGES = {"ja": "Japanese", "zh": "Mandarin Chinese", "yue": "Cantonese", "en": "English"}
TRANSLATE = (
    "You translate lines of a role-play for the character's voice. Translate the line into {language}, "
    "keeping its meaning, tone and manner of speech. Write only the translation: no quotes, no notes, "
    "no romanisation."
)
"""The fixed translation prompt; ``{language}`` is the voice's language by name."""
TRANSLATE_CUE = "Translate it into {language}; write the translation only."
FOLLOW_WAIT_S = 120.0
"""Longest a voice waits for its text to be posted before it is posted anyway."""
TOLD_TTL_S = 3600.0
_QUOTES = "「」『』\"'“”‘’"


@dataclass(slots=True, frozen=True)
class Spoken:
    """What one reply's voice says, and the voice."""

    text: str
    voice: Voice


def spoken_part(text: str, max_chars: int, long_replies: str) -> str:
    """What of ``text`` is spoken: all of it up to ``max_chars``, else its first sentences up to that
    length (``first_sentences``) or nothing (``skip``)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    if long_replies == "skip":
        return ""
    return split_message(text, max_chars)[0]


class Speaker:
    """Gives a chat's character replies their voice; see the module docstring."""

    def __init__(
        self,
        config: BotConfig,
        *,
        model: ChatModel,
        packs: PackRegistry,
        repository: Repository,
        ledger: Ledger,
        outbox: Outbox,
        governor: Governor,
        counter: TokenCounter,
        embedder: Embedder | None,
        engines: Engines | None = None,
    ) -> None:
        voice = config.voice
        self.config = config
        self.model = model
        self.packs = packs
        self.repository = repository
        self.ledger = ledger
        self.outbox = outbox
        self.governor = governor
        self.counter = counter
        self.engines = engines or Engines(voice, config.data_dir)
        self.clips = ClipMatcher(
            embedder, min_similarity=voice.clip_min_similarity, min_overlap=voice.clip_min_overlap
        )
        self.cache = VoiceCache(config.voice_cache_dir, int(voice.cache_mb * 1_000_000))
        self.encoder = Encoder()
        self.cooldown = ChatCooldown(voice.cooldown_s)
        self.clip_cooldown = ChatCooldown(voice.clip_cooldown_s)
        self._told: TTLCache[tuple[ChatKey, str], bool] = TTLCache(10_000, TOLD_TTL_S)
        self._tasks: set[asyncio.Task[None]] = set()

    def mode(self, state: ChatState) -> VoiceMode:
        """The chat's ``/voice`` mode, else ``[voice] mode``."""
        return MODES.get(state.voice_mode or "", self.config.voice.mode)

    async def speak(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Give ``replies`` (recorded, not yet posted) their voices as the chat's mode says: ``only``
        waits for them here; ``on`` makes them in the background and posts each after its text."""
        if not any(reply.in_history for reply in replies):
            return
        try:
            mode = self.mode(await self.repository.chats.state(incoming.key))
        except Exception as exc:
            self._tell(incoming.key, "state", f"the chat's voice mode cannot be read ({exc})")
            return
        if mode == "off":
            return
        for reply in replies:
            pack = self.packs.get(reply.character) if reply.character else None
            if pack is None or not reply.in_history or not reply.text.strip():
                continue
            if not self.cooldown.ready(incoming.key):
                break
            self.cooldown.used(incoming.key)
            if mode == "only":
                spoken = await self._in_time(incoming, pack, reply.text)
                if spoken is not None:
                    reply.voice, reply.voice_only = spoken.voice, True
                    await self.ledger.give_voice(reply)
            else:
                reply.settled = asyncio.Event()
                task = asyncio.get_running_loop().create_task(
                    self._follow(incoming, pack, reply), name=f"voice for {incoming.key}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop the voices still being made, and let the engines go."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engines.aclose()

    async def join(self) -> None:
        """Wait until every voice being made was posted or given up (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ the two modes

    async def _follow(self, incoming: Incoming, pack: CharacterPack, reply: Reply) -> None:
        """``/voice on``: the voice of ``reply``, posted as a reply of its own once the text is out."""
        spoken = await self._in_time(incoming, pack, reply.text)
        if spoken is None:
            return
        if reply.settled is not None:
            try:
                await asyncio.wait_for(reply.settled.wait(), FOLLOW_WAIT_S)
            except TimeoutError:
                log.info(
                    "%s: a reply's text is not out after %g s; its voice goes now",
                    incoming.key,
                    FOLLOW_WAIT_S,
                )
        follow = Reply(spoken.text, quote=False, character=pack.id, voice=spoken.voice, voice_only=True)
        await self.ledger.record(incoming.key, [follow], account=incoming.account)
        if not await self.outbox.announce(incoming.key, follow):
            await self.ledger.settle([follow], "failed", "the platform is not connected")

    async def _in_time(self, incoming: Incoming, pack: CharacterPack, text: str) -> Spoken | None:
        """The voice of ``text``, or ``None`` (logged once per chat and problem) when it cannot be
        made in ``[voice] timeout_s``."""
        try:
            return await asyncio.wait_for(self.voice_of(incoming, pack, text), self.config.voice.timeout_s)
        except TimeoutError:
            self._tell(incoming.key, "timeout", f"no voice within {self.config.voice.timeout_s:g} s")
        except BotError as exc:
            self._tell(incoming.key, type(exc).__name__, str(exc))
        except Exception:
            log.exception("%s: making a voice failed unexpectedly", incoming.key)
        return None

    def _tell(self, key: ChatKey, problem: str, message: str) -> None:
        if self._told.get((key, problem)) is None:
            self._told.put((key, problem), True)
            log.warning("%s: text only, no voice: %s", key, message)

    # ------------------------------------------------------------------ one voice

    async def voice_of(self, incoming: Incoming, pack: CharacterPack, text: str) -> Spoken | None:
        """The voice of ``text`` as ``pack`` speaks it: its recorded line when the text says it again,
        else speech (cached or made now); ``None`` when the text is too long to speak (``skip``)."""
        settings = self.config.voice
        key = incoming.key
        if settings.clips and pack.voices and self.clip_cooldown.ready(key):
            hit = await self.clips.match(pack, [text])
            if hit is not None:
                self.clip_cooldown.used(key)
                return Spoken(hit.shot.text, Voice(hit.shot.path, 0.0, recorded=True))
        words = spoken_part(text, settings.max_chars, settings.long_replies)
        if not words:
            return None
        voice = pack.settings.voice
        language = voice.spoken_language(pack.settings.language)
        if voice.translate_to and voice.translate_to != pack.settings.language:
            words = spoken_part(
                await self.translate(incoming, words, voice.translate_to),
                settings.max_chars,
                "first_sentences",
            )
        engine = self.engines.resolve(voice.engine, language)
        name = voice.voice or engine.default_voice(language)
        cache_key = self.cache.key(engine.identity(name, voice.speed), words, settings.format)
        if (cached := await asyncio.to_thread(self.cache.get, cache_key)) is not None:
            return Spoken(words, Voice(cached, 0.0))
        speech = await engine.speak(words, voice=name, speed=voice.speed)
        data, suffix = await asyncio.to_thread(self.encoder.encode, speech, settings.format)
        path = await asyncio.to_thread(self.cache.put, cache_key, data, suffix)
        if engine.name == "openai":
            await self.repository.usage.add_speech(
                key,
                incoming.sender.user_id,
                self.governor.today(),
                f"speech:{settings.openai.model}",
                len(words),
                speech.duration_s,
            )
        return Spoken(words, Voice(path, speech.duration_s))

    async def translate(self, incoming: Incoming, text: str, language: str) -> str:
        """``text`` in ``language``, by the chat model with a fixed prompt; its tokens are the chat's."""
        name = LANGUAGES.get(language, language)
        instruction = TRANSLATE.format(language=name)
        message = Turn("Line", text)
        count = self.counter.count
        prompt = Prompt(
            "Translator",
            "en",
            instruction,
            [],
            [],
            message,
            PromptTokens(count(instruction), 0, 0, count(message.render())),
            cue=TRANSLATE_CUE.format(language=name),
        )
        completion = await self.model.complete(prompt)
        async with self.repository.unit() as session:
            await self.governor.record(incoming, [completion], prompt.to_completion, session=session)
        translated = re.sub(r"^\s*Line\s*[:：]\s*", "", completion.text.strip()).strip(_QUOTES + " ")
        return translated or text
