"""Reply traces: why a character answered as it did, kept a while for the web console's inspector.

For every character answer the answer stage builds a :class:`ReplyTrace` from what the responder
already holds (:class:`~bot.engine.responder.ResponderResult`): the scenes retrieved with their
scores, the lorebook entries inserted and the key that called each, the recalled lines and the
summary, the prompt's token counts and the budgets they were laid out under, the reply check's
verdict, the screenshot chosen. Nothing is computed again for it: no embedding, no query, no token
count. The record stage stores it as one compact JSON text under the reply's delivery id, in the
same unit of work as the reply (:class:`storage.traces.Traces`); :func:`forget_old_traces` is the
daily job that deletes those older than ``[memory] trace_days``.

Texts that can be long are cut (:data:`SUMMARY_CHARS`, :data:`CLIPPED_CHARS`) with their full
length kept, so a trace stays about a kilobyte or two.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, computed_field

if TYPE_CHECKING:
    from bot.engine.packs import CharacterPack
    from bot.engine.responder import ResponderResult
    from storage import Repository

log = logging.getLogger(__name__)

TRACE_VERSION = 1
"""The shape of :class:`ReplyTrace`; raised when a field changes meaning (added fields do not)."""
SUMMARY_CHARS = 500
"""How much of the summary a trace keeps."""
CLIPPED_CHARS = 200
"""How much of a lorebook entry, or of a breach's evidence, a trace keeps."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Part(BaseModel):
    # NOTE: fields a later version adds are ignored when an older process reads a trace.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SceneTrace(_Part):
    """A retrieved scene: ``rank`` is its place in the fused ranking (1 = best), ``score`` the fused
    score, ``dense`` the cosine and ``lexical`` the BM25 coverage
    (see :class:`~bot.engine.retrieval.SceneHit`)."""

    id: str
    rank: int
    score: float
    dense: float
    lexical: float
    in_prompt: bool
    """Whether it fit ``[prompt] scenes_tokens`` (scenes that did not are skipped)."""


class LoreTrace(_Part):
    """A lorebook entry inserted, with the key that called it (``"constant"`` when it always goes in)."""

    key: str
    name: str = ""
    content: str
    """The entry's text, cut to :data:`CLIPPED_CHARS`."""


class SummaryTrace(_Part):
    """The summary the prompt carried, cut to :data:`SUMMARY_CHARS`; ``chars`` is its full length."""

    text: str
    chars: int


class PromptPartTokens(_Part):
    """Tokens of each part of the prompt (:class:`~bot.engine.prompt.PromptTokens`); ``persona``
    includes the role rules."""

    persona: int
    scenes: int
    history: int
    message: int
    lore: int = 0
    summary: int = 0
    recalled: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return sum(getattr(self, part) for part in type(self).model_fields)


class PromptTrace(_Part):
    """How the prompt was laid out: its parts' tokens and the ``[prompt]`` budgets it was built
    under (the model's own, when it asks for less than ``bot.toml`` gives)."""

    tokens: PromptPartTokens
    budgets: dict[str, int | float] = Field(default_factory=dict)
    history_turns: int = 0
    """How many turns of the chat's history fit."""


class BreachTrace(_Part):
    """How a model answer gave in (:class:`~bot.engine.guard.Breach`); ``evidence`` cut to
    :data:`CLIPPED_CHARS`."""

    kind: str
    evidence: str


class CheckTrace(_Part):
    """The reply check's verdict: the answers that gave in, whether the model was asked again,
    whether it gave in twice (the reply is the pack's deflection line), and whether the model failed
    (no answer of its was used: the apology, or a deflection when the second ask failed)."""

    breaches: list[BreachTrace] = Field(default_factory=list)
    retried: bool = False
    deflected: bool = False
    failed: bool = False


class ScreenshotTrace(_Part):
    """The screenshot chosen for the reply: its caption and how close the text was to it."""

    caption: str
    similarity: float
    overlap: float


class ReplyTrace(_Part):
    """Why one character reply came out as it did (see the module docstring).

    ``model`` is the model that answered (as it named itself), else the one asked; ``prompt_tokens``
    and ``completion_tokens`` add up every answer paid for (a retry too), ``None`` when the model
    reported none; ``latency_ms`` is the whole respond (retrieval, prompt, model, reply check,
    screenshot choice).
    """

    version: int = TRACE_VERSION
    character_id: str
    character_name: str
    model: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    scenes: list[SceneTrace] = Field(default_factory=list)
    """Every scene retrieved, best first."""
    lore: list[LoreTrace] = Field(default_factory=list)
    recalled: list[str] = Field(default_factory=list)
    """The older messages of the chat the prompt recalled, as it showed them."""
    summary: SummaryTrace | None = None
    prompt: PromptTrace
    check: CheckTrace = Field(default_factory=CheckTrace)
    screenshot: ScreenshotTrace | None = None

    @classmethod
    def build(cls, pack: CharacterPack, result: ResponderResult, *, latency_ms: float) -> ReplyTrace:
        """The trace of ``result``, ``pack``'s reply, which took ``latency_ms`` to make."""
        prompt = result.prompt
        in_prompt = {scene.id for scene in prompt.scenes}
        answered = result.completion or (result.completions[-1] if result.completions else None)
        tokens = prompt.tokens
        return cls(
            character_id=pack.id,
            character_name=pack.name,
            model=answered.model if answered is not None else result.model,
            latency_ms=round(latency_ms, 1),
            prompt_tokens=_reported([completion.prompt_tokens for completion in result.completions]),
            completion_tokens=_reported([completion.completion_tokens for completion in result.completions]),
            scenes=[
                SceneTrace(
                    id=hit.scene.id,
                    rank=rank,
                    score=round(hit.score, 4),
                    dense=round(hit.dense, 4),
                    lexical=round(hit.lexical, 4),
                    in_prompt=hit.scene.id in in_prompt,
                )
                for rank, hit in enumerate(result.hits, start=1)
            ],
            lore=[
                LoreTrace(
                    key=match.key,
                    name=match.entry.name,
                    content=clip(match.entry.content.strip(), CLIPPED_CHARS),
                )
                for match in prompt.lore_matches
            ],
            recalled=list(prompt.recalled),
            summary=SummaryTrace(text=clip(prompt.summary, SUMMARY_CHARS), chars=len(prompt.summary))
            if prompt.summary
            else None,
            prompt=PromptTrace(
                tokens=PromptPartTokens(
                    persona=tokens.persona,
                    scenes=tokens.scenes,
                    history=tokens.history,
                    message=tokens.message,
                    lore=tokens.lore,
                    summary=tokens.summary,
                    recalled=tokens.recalled,
                ),
                budgets=result.budgets.model_dump() if result.budgets is not None else {},
                history_turns=len(prompt.history),
            ),
            check=CheckTrace(
                breaches=[
                    BreachTrace(kind=breach.kind, evidence=clip(breach.evidence, CLIPPED_CHARS))
                    for breach in result.breaches
                ],
                retried=bool(result.breaches),
                deflected=result.deflected,
                failed=result.failed,
            ),
            screenshot=ScreenshotTrace(
                caption=result.screenshot.shot.text,
                similarity=round(result.screenshot.similarity, 4),
                overlap=round(result.screenshot.overlap, 4),
            )
            if result.screenshot is not None
            else None,
        )

    def to_json(self) -> str:
        """The trace as stored: compact JSON, non-ASCII text as it is."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> ReplyTrace:
        """A stored trace read back (:meth:`storage.traces.Traces.get` gives the text)."""
        return cls.model_validate_json(text)


def _reported(counts: list[int | None]) -> int | None:
    """The sum of the counts the model reported; ``None`` when it reported none."""
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


async def forget_old_traces(repository: Repository, days: float, *, now: datetime | None = None) -> int:
    """Delete the traces older than ``days`` (``[memory] trace_days``; 0 deletes them all): the
    daily job. How many were deleted."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    deleted = await repository.traces.delete_before(cutoff)
    if deleted:
        log.info("traces: deleted %d reply trace(s) older than %g days", deleted, days)
    return deleted
