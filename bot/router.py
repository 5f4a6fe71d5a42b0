"""The router: composes the stages of :mod:`bot.flow` into the answer to one message.

* ``/command ...`` (with or without ``@``) → the command registry;
* ``@bot ...`` or a private message → the chat's active character answers, or the character the
  platform says is addressed (a reply to that character's message, ``Incoming.character``);
* a message that opens with a character's name or alias (``Orla, ...`` / ``小满，...``) → that
  character answers (the active one, or another one without switching);
* the next message of a user a command is asking questions (``/character create``) → that command;
* anything else → no reply (files are remembered a while for a ``/character import`` just after).

Messages of one chat are handled one at a time, in order; different chats run concurrently.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.commands import CommandContext, CommandRegistry, Conversations, RecentFiles
from bot.engine.pack_models import PackModels
from bot.engine.prompt import TokenCounter
from bot.flow.answer import Answer, Answerer
from bot.flow.bursts import Bursts
from bot.flow.classify import Classifier, CommandCall, Step, Talk, clipped
from bot.flow.cooldown import ChatCooldown
from bot.flow.gather import Gatherer, Said
from bot.flow.greet import Greeter
from bot.flow.locks import ChatLocks
from bot.flow.record import Recorder
from bot.flow.speak import Speaker
from bot.flow.waiting import WaitingNotice
from bot.governor import Decision, Governor
from bot.greetings import Greetings
from bot.messages import Incoming, Reply
from storage.db import STORAGE_FAILURES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.catalog import PackCatalog
    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack
    from bot.engine.responder import Responder
    from bot.health import StorageWatch
    from bot.ledger import Ledger
    from bot.outbox import Outbox
    from bot.scheduler import Scheduler
    from storage import Repository

log = logging.getLogger(__name__)


class Router:
    """Routes each :class:`Incoming` to a command or a character and returns the replies."""

    def __init__(
        self,
        *,
        config: BotConfig,
        catalog: PackCatalog,
        repository: Repository,
        responder: Responder,
        commands: CommandRegistry,
        scheduler: Scheduler,
        outbox: Outbox,
        ledger: Ledger,
        chance: random.Random | None = None,
        process: str = "",
        governor: Governor | None = None,
        storage_watch: StorageWatch | None = None,
        pack_models: PackModels | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.catalog = catalog
        self.packs = catalog.packs
        self.repository = repository
        self.responder = responder
        self.commands = commands
        self.outbox = outbox
        self.ledger = ledger
        """Where every reply is recorded before it is posted."""
        self.storage_watch = storage_watch
        """Told when the database fails (see :mod:`bot.health`)."""
        self.process = process
        """This runtime's name in message claims (``host:pid:random``)."""
        self.conversations = Conversations()
        self.recent_files = RecentFiles()
        self.locks = ChatLocks(repository.chat_lock)
        self.bursts = Bursts()
        self.classifier = Classifier(
            commands, self.conversations, self.packs, config.groups.max_characters_per_message
        )
        self.gatherer = Gatherer(
            config,
            self.packs,
            repository,
            process=process,
            busy=timedelta(seconds=2 * config.llm.reply_deadline_s + config.groups.debounce_s),
            chance=chance or random.Random(),
        )
        self.pack_models = pack_models or PackModels(responder.model, config.llm)
        """The characters' own models (``[llm]`` in ``character.toml``); the runtime closes them."""
        self.answerer = Answerer(config, responder, ChatCooldown(config.images.cooldown_s), self.pack_models)
        self.waiting = WaitingNotice(ledger, outbox)
        self.recorder = Recorder(
            repository, ledger, governor or Governor(config, repository, TokenCounter.default()), self.packs
        )
        self.speaker = Speaker(
            config,
            model=responder.model,
            packs=self.packs,
            repository=repository,
            ledger=ledger,
            outbox=outbox,
            governor=self.recorder.governor,
            counter=TokenCounter.default(),
            embedder=responder.screenshots.embedder,
        )
        greeter = Greeter(
            config, repository, self.locks, self.gatherer, responder, ledger, outbox, self.pack_models
        )
        self.greetings = Greetings(
            repository=repository, scheduler=scheduler, config=config.scheduler, send=greeter.greet
        )

    @property
    def governor(self) -> Governor:
        """Rate limits and budgets: rules before each answer, counts what each answer cost."""
        return self.recorder.governor

    @governor.setter
    def governor(self, governor: Governor) -> None:
        self.recorder.governor = self.speaker.governor = governor

    def is_addressed(self, incoming: Incoming) -> bool:
        """Whether :meth:`handle` will answer ``incoming`` (platforms show "typing…" for these)."""
        return self.classifier.is_addressed(incoming)

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Everything the bot says in answer to ``incoming`` (often nothing).

        When the database fails, the storage watch hears of it and an addressed message gets, once
        per chat, a notice that nothing can be remembered now.
        """
        try:
            replies = await self._handle(incoming)
        except STORAGE_FAILURES as exc:
            if self.storage_watch is None:
                raise
            await self.storage_watch.failed(str(exc).splitlines()[0])
            return self.storage_watch.notice_for(incoming.key) if self.is_addressed(incoming) else []
        await self.speaker.speak(incoming, replies)
        return replies

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        self.recent_files.keep(incoming)
        text = clipped(incoming.text.strip(), self.config.memory.max_message_chars)
        if not text:
            return []
        kind = self.classifier.classify(incoming, text)
        if isinstance(kind, CommandCall) and kind.command is None and not incoming.to_me:
            return []
        async with self.locks.hold(incoming.key):
            if isinstance(kind, Talk):
                said = await self.gatherer.talk(incoming, kind, decide=partial(self._decide_first, incoming))
                if said is None:
                    return []
                if said.debounce_s:
                    burst = (incoming.key, incoming.sender.user_id)
                    token = self.bursts.add(burst, said)
                else:
                    return await self._answered(incoming, said, said.owed)
            else:
                return await self._command(incoming, kind, text)
        owed = await self.bursts.settle(burst, token, said.debounce_s)
        async with self.locks.hold(incoming.key):
            if owed is None:
                return await self.recorder.record(incoming, said.notices)
            if not owed:
                async with self.repository.unit() as session:
                    await self.gatherer.join_room_talk(incoming, said, session)
                owed = said.owed
            return await self._answered(incoming, said, owed)

    async def _command(self, incoming: Incoming, kind: CommandCall | Step, text: str) -> list[Reply]:
        """A command, or the answer to a command's question: its reply, recorded."""
        async with self.repository.unit() as session:
            if await self.gatherer.claim(incoming, session) is None:
                return []
            state, notices = await self.gatherer.state(incoming, session)
            granted = await self.repository.chats.is_admin(
                incoming.key, incoming.sender.user_id, session=session
            )
        context = CommandContext(
            incoming,
            self.config,
            self.catalog,
            self.repository,
            self.gatherer.active_pack(state),
            state,
            self.conversations,
            self.scheduler,
            self.greetings,
            granted_admin=granted,
            recent_files=self.recent_files.of(incoming),
            governor=self.governor,
            speaker=self.speaker,
        )
        if isinstance(kind, CommandCall):
            if kind.command is None:
                reply = Reply(f"Unknown command /{kind.name}. Send /help for the list.")
            else:
                reply = await self.commands.dispatch(kind.command, context, kind.args)
        elif (step := self.conversations.take(incoming.key, incoming.sender.user_id)) is not None:
            reply = await self.commands.continue_with(step, context, text)
        else:
            return await self.recorder.record(incoming, notices)
        return await self.recorder.record(incoming, [*notices, reply])

    async def _answered(self, incoming: Incoming, said: Said, owed: Mapping[str, int]) -> list[Reply]:
        """The chat's notices and the answers of the characters ``owed``, recorded."""
        replies, answers = await self._reply(incoming, said, owed)
        return await self.recorder.record(incoming, [*said.notices, *replies], answers)

    async def _reply(
        self, incoming: Incoming, said: Said, owed: Mapping[str, int]
    ) -> tuple[list[Reply], list[Answer]]:
        """The answers of the characters ``owed`` (to the messages given), each governed first."""
        contexts = said.contexts
        if set(contexts) != set(owed) or any(
            contexts[pack].message.id != message for pack, message in owed.items()
        ):
            contexts = await self.gatherer.contexts(incoming.key, owed, said.state)
        replies: list[Reply] = []
        answers: list[Answer] = []
        waiting = list(owed.items())
        decided = said.decision if contexts is said.contexts else None
        for position, (pack_id, _message) in enumerate(waiting):
            if (context := contexts.get(pack_id)) is None:
                continue
            if position == 0 and decided is not None:
                decision = decided
            else:
                decision = await self._decide(incoming, said, context.pack, dict(waiting[position:]))
            if decision.verdict != "answer":
                log.info(
                    "%s: %s for %s (%s)", incoming.key, decision.verdict, incoming.sender.user_id, pack_id
                )
                if decision.line:
                    replies.append(Reply(decision.line, character=pack_id))
                break
            if not self.responder.model.ready:
                await self.waiting.tell(incoming.key, context.pack)
            answer = await self.answerer.answer(incoming.key, context, said.state, model=decision.model)
            answer.reply.quote = not said.unprompted
            replies.append(answer.reply)
            answers.append(answer)
        return replies, answers

    async def _decide_first(self, incoming: Incoming, said: Said, session: AsyncSession) -> Decision | None:
        """The governor's word on the first character ``said`` owes an answer, in the gather's unit."""
        waiting = list(said.owed.items())
        if not waiting or (pack := self.packs.get(waiting[0][0])) is None:
            return None
        return await self._decide(incoming, said, pack, said.owed, session)

    async def _decide(
        self,
        incoming: Incoming,
        said: Said,
        pack: CharacterPack,
        rest: Mapping[str, int],
        session: AsyncSession | None = None,
    ) -> Decision:
        """The governor's word on ``pack`` answering now; when it puts the answer off, ``rest`` (this
        character and those after it) is answered once the window frees (never an unprompted join)."""
        again = None if said.unprompted else partial(self._answer_later, incoming, said, dict(rest))
        return await self.governor.decide(incoming, pack, again=again, session=session)

    async def _answer_later(self, incoming: Incoming, said: Said, owed: Mapping[str, int]) -> None:
        """The answers the governor put off until a window freed (:class:`bot.governor.Later`):
        through the same path, then posted by the bot itself, quoting the message they answer."""
        said.notices, said.contexts, said.decision = [], {}, None
        async with self.locks.hold(incoming.key):
            replies = await self._answered(incoming, said, owed)
        await self.speaker.speak(incoming, replies)
        for reply in replies:
            reply.reply_to = incoming.message_id if reply.quote else None
            if not await self.outbox.announce(incoming.key, reply):
                await self.ledger.settle([reply], "failed", "the platform is not connected")
