"""Role-play quality: a model answers each question in character, a judge model scores the answer.

The rubric is fixed (:data:`RUBRIC`), so scores of different models and runs compare. The judge sees
the character's persona and the scene the question is about, and returns four scores from 1 to 5; an
answer it scores unreadably is *unscored*, never given a made-up number.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.engine.model import ChatModel
from bot.engine.packs import CharacterPack, Scene
from bot.engine.prompt import Prompt, PromptTokens, TokenCounter, Turn
from bot.engine.responder import Responder
from bot.errors import ModelError
from bot.eval.questions import EvalQuestion

DIMENSIONS = ("in_character", "consistency", "tone", "fluency")
RUBRIC = """You judge how well an AI plays a fictional character in a group chat. Score the answer from
1 (worst) to 5 (best) on each dimension:
- in_character: the answer stays the character throughout; it never breaks role, never mentions being
  an AI, a model or a bot. 1 = out of character; 5 = fully in role.
- consistency: the answer agrees with the character's persona and the reference scene (names, facts,
  relationships, setting). 1 = contradicts them; 5 = consistent, uses them well.
- tone: the answer sounds like this character (voice, manner, length, habits of speech). 1 = generic;
  5 = unmistakably this character.
- fluency: natural, well-formed language for a chat message. 1 = broken; 5 = effortless.
Reply with one JSON object and nothing else, e.g.
{"in_character": 4, "consistency": 3, "tone": 4, "fluency": 5}"""
USER_NAME = "Member"

_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_PAIR = re.compile(r"(in_character|consistency|tone|fluency)\W{0,4}(\d+)")


@dataclass(slots=True, frozen=True)
class Price:
    """USD per million prompt and completion tokens."""

    prompt: float
    completion: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


@dataclass(slots=True)
class Answer:
    """One answer of one model to one question, and what the judge made of it."""

    model: str
    pack: str
    question: str
    scene: str
    run: int
    text: str
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    scores: dict[str, int] | None = None
    judged: str = ""
    """The judge's raw output."""
    scene_rank: int | None = None
    """Where the question's scene came among the scenes retrieved for this answer (1: first);
    ``None``: not retrieved."""
    scene_in_prompt: bool = False
    """Whether the question's scene made it into the prompt this model was given (a model with a
    smaller prompt budget takes fewer of the retrieved scenes)."""


@dataclass(slots=True)
class ModelScores:
    """Every answer of one model, and the figures over them."""

    model: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def scored(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.scores is not None]

    def dimension(self, name: str) -> tuple[float, float] | None:
        """Mean and standard deviation of one dimension (``overall``: the mean of the four)."""
        values = [
            statistics.fmean(answer.scores.values()) if name == "overall" else answer.scores[name]
            for answer in self.scored
            if answer.scores is not None
        ]
        if not values:
            return None
        return statistics.fmean(values), statistics.pstdev(values)

    @property
    def scene_in_prompt(self) -> float | None:
        """The share of answers whose prompt held the question's scene."""
        if not self.answers:
            return None
        return statistics.fmean(answer.scene_in_prompt for answer in self.answers)

    @property
    def recall_at_1(self) -> float | None:
        """The share of answers whose retrieval put the question's scene first."""
        if not self.answers:
            return None
        return statistics.fmean(answer.scene_rank == 1 for answer in self.answers)

    def for_pack(self, pack: str) -> ModelScores:
        """The answers about one pack only."""
        return ModelScores(self.model, [answer for answer in self.answers if answer.pack == pack])

    @property
    def latency_s(self) -> float:
        return statistics.median(answer.latency_s for answer in self.answers) if self.answers else 0.0

    @property
    def tokens(self) -> float:
        if not self.answers:
            return 0.0
        return statistics.fmean(answer.prompt_tokens + answer.completion_tokens for answer in self.answers)

    @property
    def cost(self) -> float | None:
        costs = [answer.cost for answer in self.answers if answer.cost is not None]
        return statistics.fmean(costs) if costs and len(costs) == len(self.answers) else None

    def summary(self) -> str:
        """One line: ``m: 4.21 ± 0.52 overall (in_character 4.5, …), 1.3 s, 9/9 scored``."""
        overall = self.dimension("overall")
        if overall is None:
            head = f"{self.model}: no answer scored"
        else:
            parts = ", ".join(
                f"{name} {mean:.1f}"
                for name in DIMENSIONS
                if (found := self.dimension(name))
                for mean, _sd in [found]
            )
            head = f"{self.model}: {overall[0]:.2f} ± {overall[1]:.2f} overall ({parts})"
        cost = f", ${self.cost:.4f} per answer" if self.cost is not None else ""
        return f"{head}, {self.latency_s:.1f} s{cost}, {len(self.scored)}/{len(self.answers)} scored"


def parse_scores(text: str) -> dict[str, int] | None:
    """The four scores in a judge's output: a JSON object, else ``name: n`` pairs; ``None`` when any is
    missing or outside 1–5."""
    found: dict[str, object] = {}
    for candidate in _JSON_OBJECT.findall(text):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and set(DIMENSIONS) <= set(data):
            found = {name: data[name] for name in DIMENSIONS}
            break
    if not found:
        found = dict(_PAIR.findall(text))
    scores: dict[str, int] = {}
    for name in DIMENSIONS:
        value = found.get(name)
        try:
            number = int(str(value))
        except ValueError:
            return None
        if not 1 <= number <= 5 or str(value).strip() not in (str(number), f"{number}.0"):
            return None
        scores[name] = number
    return scores


def judge_prompt(
    pack: CharacterPack, scene: Scene, question: str, answer: str, counter: TokenCounter
) -> Prompt:
    """What the judge model is given: the rubric, the character, the reference scene, the exchange."""
    reference = "\n".join(line.render() for line in scene.lines)
    system = (
        f"{RUBRIC}\n\nThe character: {pack.name}.\n{pack.settings.persona.strip()}\n\n"
        f"Reference scene:\n{reference}"
    )
    message = f"A member asked: {question}\n{pack.name} answered: {answer}\nYour scores as JSON:"
    turn = Turn("Task", message)
    return Prompt(
        character="Judge",
        language="en",
        persona=system,
        scenes=[],
        history=[],
        message=turn,
        tokens=PromptTokens(counter.count(system), 0, 0, counter.count(turn.render())),
    )


async def answer_and_judge(
    name: str,
    responder: Responder,
    judge: ChatModel,
    pack: CharacterPack,
    question: EvalQuestion,
    run: int,
    price: Price | None,
    counter: TokenCounter,
) -> Answer:
    """``name``'s answer (through the real responder: persona, retrieved scenes) and its scores."""
    started = time.perf_counter()
    result = await responder.respond(pack, [], Turn(USER_NAME, question.text))
    latency = time.perf_counter() - started
    completion = result.completion
    prompt_tokens = (completion.prompt_tokens or 0) if completion else 0
    completion_tokens = (completion.completion_tokens or 0) if completion else 0
    answer = Answer(
        name,
        pack.id,
        question.text,
        question.scene,
        run,
        result.text,
        latency,
        prompt_tokens,
        completion_tokens,
        price.cost(prompt_tokens, completion_tokens) if price else None,
        scene_rank=next(
            (rank for rank, hit in enumerate(result.hits, start=1) if hit.scene.id == question.scene), None
        ),
        scene_in_prompt=question.scene in result.prompt.scene_ids,
    )
    if result.failed:
        answer.judged = "(the model gave no answer)"
        return answer
    scene = next(scene for scene in pack.scenes if scene.id == question.scene)
    try:
        verdict = await judge.complete(judge_prompt(pack, scene, question.text, result.text, counter))
    except ModelError as exc:
        answer.judged = f"(the judge failed: {exc})"
        return answer
    answer.judged = verdict.text
    answer.scores = parse_scores(verdict.text)
    return answer


def by_model(answers: Sequence[Answer]) -> list[ModelScores]:
    models: dict[str, ModelScores] = {}
    for answer in answers:
        models.setdefault(answer.model, ModelScores(answer.model)).answers.append(answer)
    return list(models.values())
