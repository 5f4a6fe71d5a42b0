"""One in-character reply: retrieve scenes → build the prompt → ask the model → clean the answer →
check it stayed in character (asking once more, then deflecting, when it did not).

The whole reply, every retry and the second ask included, has one deadline (``[llm]
reply_deadline_s``): past it, or when the model fails in any way, the group gets the pack's apology.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.engine.guard import Breach, check_reply, deflection, reminder
from bot.engine.recall import Recall
from bot.engine.replies import clean_reply
from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from bot.config import BotConfig, PromptConfig
    from bot.engine.model import ChatModel, Completion
    from bot.engine.packs import CharacterPack
    from bot.engine.prompt import Prompt, PromptBuilder, Turn
    from bot.engine.retrieval import Retriever, SceneHit
    from bot.engine.screenshots import ScreenshotHit, ScreenshotMatcher

log = logging.getLogger(__name__)

DEFAULT_APOLOGY = {
    "en": "Sorry, my thoughts wandered off. Say that again in a moment?",
    "zh": "抱歉，我刚走神了，稍后再说一遍好吗？",
}


@dataclass(slots=True)
class ResponderResult:
    """The reply text, and what produced it; ``completion`` is ``None`` when the model failed."""

    text: str
    prompt: Prompt
    completion: Completion | None
    screenshot: ScreenshotHit | None = None
    breaches: list[Breach] = field(default_factory=list)
    """How the model gave in before this reply (none when the first answer stayed in character)."""
    completions: list[Completion] = field(default_factory=list)
    """Every model answer paid for, the retry included (usage counts them all)."""
    hits: list[SceneHit] = field(default_factory=list)
    """The scenes retrieved, best first, with their scores (the prompt took those that fit)."""
    budgets: PromptConfig | None = None
    """The budgets the prompt was laid out under."""
    model: str = ""
    """The name of the model asked."""

    @property
    def deflected(self) -> bool:
        """Whether the reply is the pack's deflection line: the model gave in twice."""
        return len(self.breaches) >= 2

    @property
    def failed(self) -> bool:
        return self.completion is None


class Responder:
    """The engine's front door: turns a character, its history and a message into a reply."""

    def __init__(
        self,
        *,
        config: BotConfig,
        retriever: Retriever,
        prompts: PromptBuilder,
        model: ChatModel,
        screenshots: ScreenshotMatcher,
    ) -> None:
        self.config = config
        self.retriever = retriever
        self.prompts = prompts
        self.model = model
        self.screenshots = screenshots
        self.recall = Recall(
            retriever.embedder, dense_weight=config.retrieval.dense_weight, queue=retriever.queue
        )

    async def respond(
        self,
        pack: CharacterPack,
        history: Sequence[Turn],
        message: Turn,
        *,
        with_screenshot: bool = False,
        summary: str = "",
        recalled: Sequence[str] = (),
        model: ChatModel | None = None,
    ) -> ResponderResult:
        """Answer ``message`` as ``pack``; a model failure yields the pack's apology, never an exception.

        The model gets ``[llm] reply_deadline_s`` from now for the whole answer, retries and the
        reply check's second ask included. With ``with_screenshot``, the result carries the
        screenshot whose line is close to the reply or to the message, when one is. ``model``
        answers instead of the responder's own.
        """
        chosen = model or self.model
        deadline = asyncio.get_running_loop().time() + self.config.llm.reply_deadline_s
        top_k = pack.settings.top_k if pack.settings.top_k is not None else self.config.retrieval.top_k
        context = history[-1].text if history else ""
        hits = await self.retriever.search(pack, message.text, top_k, context=context) if top_k else []
        prompt = self.prompts.build(pack, [hit.scene for hit in hits], history, message, summary, recalled)
        max_chars = pack.settings.max_chars or self.config.reply.max_chars
        names = [pack.name, *pack.aliases]
        others = {turn.speaker for turn in [*prompt.history, prompt.message] if not turn.from_character}
        told = prompt.system_text()
        result = ResponderResult("", prompt, None, hits=hits, budgets=self.prompts.budgets, model=chosen.name)
        asked = prompt
        for _attempt in range(2):
            try:
                completion = await self._ask(chosen, asked, deadline)
            except ModelError as exc:
                log.error("no reply from the model for %s: %s", pack.id, exc)
                result.text = self.apology(pack) if not result.breaches else self._deflection(pack, history)
                return result
            result.completions.append(completion)
            text = clean_reply(completion.text, names=names, max_chars=max_chars)
            if not text:
                log.warning("the model's reply for %s was empty after cleaning: %r", pack.id, completion.text)
                result.text = self.apology(pack)
                return result
            breach = check_reply(text, prompt_text=told, others=others)
            if breach is None:
                result.text, result.completion = text, completion
                break
            log.warning(
                "%s's reply broke character (%s: %r); asking again", pack.id, breach.kind, breach.evidence
            )
            result.breaches.append(breach)
            asked = replace(prompt, reminder=reminder(breach, pack.name, pack.settings.language))
        else:
            result.text, result.completion = self._deflection(pack, history), result.completions[-1]
            return result
        self.recall.remember((message.text, result.text))  # their vectors, in the background
        if with_screenshot:
            result.screenshot = await self.screenshots.match(pack, [result.text, message.text])
        return result

    async def _ask(self, model: ChatModel, prompt: Prompt, deadline: float) -> Completion:
        """``model``'s answer by ``deadline`` (loop time); every way of not getting one is a ModelError."""
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                return await model.complete(prompt)
        except ModelError:
            raise
        except TimeoutError as exc:
            if timeout.expired():
                raise ModelTimeout(
                    f"no answer within the reply deadline of {self.config.llm.reply_deadline_s:g} s"
                ) from exc
            raise ModelError(f"the model failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # NOTE: a model is outside code (a server, a local runtime); whatever it raises must end
            # in the apology, not in an exception through the router. The traceback goes to the log.
            log.exception("the model %s failed unexpectedly", model.name)
            raise ModelError(f"the model failed unexpectedly: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _deflection(pack: CharacterPack, history: Sequence[Turn]) -> str:
        """A deflection line of the pack's other than the one the chat heard from it last."""
        heard = [turn.text for turn in reversed(history) if turn.from_character]
        return deflection(pack.name, pack.settings.language, pack.settings.deflection, heard)

    @staticmethod
    def apology(pack: CharacterPack) -> str:
        return pack.settings.apology or DEFAULT_APOLOGY.get(pack.settings.language, DEFAULT_APOLOGY["en"])
