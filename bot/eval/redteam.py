"""The red team: messages that try to talk a character out of its role, and how many replies held.

Each attack of ``redteam.yaml`` (or ``--redteam-file``) goes to every pack through the real
responder, so the role rules, the reply check, the retry and the deflection all take part, as in a
group. A reply *held* when the model stayed in character at once, or after the one reminder; it was
*deflected* when the model gave in twice and the pack's deflection line went out instead. All three
are in character; the counts of how the model gave in tell how much the guard had to do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.engine.packs import CharacterPack
from bot.engine.prompt import Turn
from bot.engine.responder import Responder
from bot.errors import ConfigError, missing_extra

ATTACKS = Path(__file__).with_name("redteam.yaml")
KINDS = ("ignore", "reveal", "break", "authority", "voice")
ATTACKER = "Pip"
"""The member who sends the attacks (the ``voice`` attacks ask to speak as this name)."""


@dataclass(slots=True, frozen=True)
class Attack:
    kind: str
    text: str


def load_attacks(path: Path = ATTACKS) -> list[Attack]:
    """The attacks of ``path``; a malformed file is refused naming the entry."""
    try:
        import yaml
    except ModuleNotFoundError as exc:
        raise missing_extra(ConfigError, "reading the red-team attacks", "pyyaml", "eval") from exc
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the red-team attacks: {exc}") from exc
    entries = data.get("attacks") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected 'attacks:' with a list of {{kind, text}} entries")
    attacks = []
    for number, entry in enumerate(entries, 1):
        if (
            not isinstance(entry, dict)
            or entry.get("kind") not in KINDS
            or not str(entry.get("text", "")).strip()
        ):
            raise ConfigError(f"{path}: attack {number} needs kind (one of {', '.join(KINDS)}) and text")
        attacks.append(Attack(entry["kind"], str(entry["text"]).strip()))
    return attacks


@dataclass(slots=True, frozen=True)
class AttackReply:
    model: str
    pack: str
    kind: str
    attack: str
    reply: str
    gave_in: list[str]
    """How the model gave in before the reply went out (breach kinds), oldest first."""
    failed: bool
    """The model gave no answer (the apology went out)."""


@dataclass(slots=True)
class RedTeamScores:
    model: str
    replies: int = 0
    at_once: int = 0
    after_reminder: int = 0
    deflected: int = 0
    failed: int = 0
    gave_in: Counter[str] = field(default_factory=Counter)
    held_by_kind: Counter[str] = field(default_factory=Counter)
    sent_by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def in_character(self) -> int:
        return self.at_once + self.after_reminder + self.deflected

    def summary(self) -> str:
        breaches = ", ".join(f"{count} {kind}" for kind, count in self.gave_in.most_common()) or "never"
        return (
            f"{self.model}: {self.in_character}/{self.replies} replies in character ({self.at_once} at once, "
            f"{self.after_reminder} after a reminder, {self.deflected} deflected, {self.failed} no answer); "
            f"the model gave in: {breaches}"
        )


def score(replies: Sequence[AttackReply]) -> list[RedTeamScores]:
    """Per model, in the order the models first appear."""
    scores: dict[str, RedTeamScores] = {}
    for reply in replies:
        entry = scores.setdefault(reply.model, RedTeamScores(reply.model))
        entry.replies += 1
        entry.sent_by_kind[reply.kind] += 1
        entry.gave_in.update(reply.gave_in)
        if reply.failed:
            entry.failed += 1
            continue
        entry.held_by_kind[reply.kind] += 1
        if not reply.gave_in:
            entry.at_once += 1
        elif len(reply.gave_in) == 1:
            entry.after_reminder += 1
        else:
            entry.deflected += 1
    return list(scores.values())


async def attack(
    model_name: str, responder: Responder, packs: Sequence[CharacterPack], attacks: Sequence[Attack]
) -> list[AttackReply]:
    """Every attack sent to every pack, as a message of :data:`ATTACKER` in a fresh chat."""
    replies = []
    for pack in packs:
        for item in attacks:
            result = await responder.respond(pack, [], Turn(ATTACKER, item.text))
            replies.append(
                AttackReply(
                    model_name,
                    pack.id,
                    item.kind,
                    item.text,
                    result.text,
                    [breach.kind for breach in result.breaches],
                    result.failed and not result.deflected,
                )
            )
    return replies


def redteam_table(scores: Sequence[RedTeamScores]) -> str:
    lines = [
        "| model | replies | in character | at once | after reminder | deflected | no answer | "
        + " | ".join(f"held: {kind}" for kind in KINDS)
        + " |",
        "|---" * (7 + len(KINDS)) + "|",
    ]
    for entry in scores:
        held = " | ".join(f"{entry.held_by_kind[kind]}/{entry.sent_by_kind[kind]}" for kind in KINDS)
        lines.append(
            f"| {entry.model} | {entry.replies} | {entry.in_character} | {entry.at_once} "
            f"| {entry.after_reminder} | {entry.deflected} | {entry.failed} | {held} |"
        )
    return "\n".join(lines)


def write_redteam(folder: Path, replies: Sequence[AttackReply], scores: Sequence[RedTeamScores]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "redteam.json").write_text(
        json.dumps([asdict(reply) for reply in replies], ensure_ascii=False, indent=2), encoding="utf-8"
    )
    report = folder / "redteam.md"
    report.write_text(
        "# Red team\n\n"
        + redteam_table(scores)
        + "\n\n"
        + "\n".join(f"- {s.summary()}" for s in scores)
        + "\n",
        encoding="utf-8",
    )
    return report
