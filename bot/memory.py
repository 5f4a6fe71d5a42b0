"""Rolling summaries: what a character remembers of a chat's messages that no longer fit its prompt.

The prompt holds the newest ``[prompt] history_turns`` messages verbatim. Once ``[memory]
summary_batch`` more have fallen out of that window, the background job asks the model to fold them
into the character's summary of the chat, which the prompt then carries. It runs off the reply path:
a reply never waits for a summary, and a failed summary is tried again at the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.config import BotConfig
from bot.engine.model import ChatModel
from bot.engine.packs import CharacterPack
from bot.engine.prompt import Prompt, PromptTokens, TokenCounter, Turn
from bot.engine.registry import PackRegistry
from bot.errors import ModelError
from bot.governor import SUMMARIES, local_day, tokens_of
from bot.messages import ChatKey
from storage import Repository, StoredMessage

log = logging.getLogger(__name__)

INSTRUCTIONS = {
    "en": (
        "You keep the memory of {name} for one group chat. Fold the new messages into the memory: who "
        "is who, what they told {name}, promises, plans, feelings and facts worth remembering. Keep names "
        "exactly as written. Write plain sentences in the third person, at most {words} words, nothing else."
    ),
    "zh": (
        "你负责记住{name}在这个群里的经历。把新消息并入已有记忆：谁是谁，对{name}说过什么，约定、计划、"
        "情绪和值得记住的事实。名字照原样写。用第三人称的平实句子，不超过{words}字，只写记忆本身。"
    ),
}
REQUEST = {"en": "Write the updated memory.", "zh": "写出更新后的记忆。"}
EARLIER = {"en": "Memory so far:", "zh": "已有记忆："}


@dataclass(slots=True, frozen=True)
class SummaryRun:
    """What one pass of the summary job did."""

    summarised: int
    failed: int


class Summarizer:
    """Folds each chat's older messages into the character's summary, with the chat model."""

    def __init__(
        self,
        config: BotConfig,
        repository: Repository,
        model: ChatModel,
        packs: PackRegistry,
        counter: TokenCounter,
    ) -> None:
        self.config = config
        self.repository = repository
        self.model = model
        self.packs = packs
        self.counter = counter

    @property
    def keep(self) -> int:
        """Messages that stay verbatim in prompts: the history window."""
        return max(self.config.prompt.history_turns, 1)

    async def run(self) -> SummaryRun:
        """Summarise every chat and character that is due; one failure does not stop the others."""
        due = await self.repository.summaries.due(self.keep, self.config.memory.summary_batch)
        summarised = failed = 0
        for item in due:
            pack = self.packs.get(item.character_id)
            if pack is None:
                continue
            try:
                await self.summarise(ChatKey(item.platform, item.chat_id), pack)
                summarised += 1
            except ModelError as exc:
                failed += 1
                log.warning(
                    "summary of %s in %s:%s failed, retried next run: %s",
                    pack.id,
                    item.platform,
                    item.chat_id,
                    exc,
                )
        if due:
            log.info("summaries: %d written, %d failed", summarised, failed)
        return SummaryRun(summarised, failed)

    async def clean_up(self) -> int:
        """Delete the raw messages older than ``[memory] retention_days`` that summaries cover."""
        days = self.config.memory.retention_days
        if not days:
            return 0
        cutoff = datetime.now(UTC) - timedelta(days=days)
        deleted = await self.repository.summaries.delete_summarised_before(cutoff)
        if deleted:
            log.info("retention: deleted %d summarised messages older than %g days", deleted, days)
        return deleted

    async def summarise(self, key: ChatKey, pack: CharacterPack) -> bool:
        """Fold the messages of ``pack`` in ``key`` that left the history window into its summary."""
        older = await self.repository.summaries.to_summarise(key, pack.id, self.keep)
        if not older:
            return False
        earlier, _covered = await self.repository.summaries.get(key, pack.id)
        prompt = self._prompt(pack, earlier, older)
        completion = await self.model.complete(prompt)
        day = local_day(self.config.scheduler.timezone, datetime.now(UTC))
        spent = tokens_of(completion, prompt.to_completion, self.counter)
        await self.repository.usage.add(key, SUMMARIES, day, completion.model, *spent)
        text = " ".join(completion.text.split())
        if not text:
            raise ModelError("the model returned an empty summary")
        limit = self.config.prompt.summary_tokens or 300
        await self.repository.summaries.save(key, pack.id, self.counter.truncate(text, limit), older[-1].id)
        log.info("summary of %s in %s now covers up to message %d", pack.id, key, older[-1].id)
        return True

    def _prompt(self, pack: CharacterPack, earlier: str, older: list[StoredMessage]) -> Prompt:
        language = pack.settings.language if pack.settings.language in INSTRUCTIONS else "en"
        words = max(self.config.prompt.summary_tokens // 2, 50)
        instructions = INSTRUCTIONS[language].format(name=pack.name, words=words)
        if earlier:
            instructions += f"\n\n{EARLIER[language]}\n{earlier}"
        turns = [
            Turn(pack.name, message.text, from_character=True)
            if message.role == "character"
            else Turn(message.speaker, message.text)
            for message in older
        ]
        request = Turn("System", REQUEST[language])
        count = self.counter.count
        tokens = PromptTokens(
            count(instructions), 0, sum(count(turn.render()) for turn in turns), count(request.text)
        )
        return Prompt(pack.name, language, instructions, [], turns, request, tokens)
