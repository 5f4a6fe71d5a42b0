"""``/character create <id> <name>``: a new character from a few answers, or from one message.

Guided, the bot asks four questions (persona, other names, greeting, example lines), each answered by
the user's next message in the chat, ``@`` or not; ``/cancel`` stops. In one message, the lines after
the command are the answers, each opened by its field name::

    /character create wren Wren Calloway
    persona: A lighthouse cartographer who maps the coast by lantern...
    aliases: Wren, Miss Calloway
    greeting: Charts are drying; mind the ink.
    examples:
    Pip: Where does the reef end?
    Wren: Two fathoms past the bell buoy, and not a yard less.

The pack is written like any import (whole or not at all) and is live in every chat at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.commands import CommandContext, Handler, split_first
from bot.engine.packs import PACK_ID
from bot.errors import CommandError, PackError
from bot.extract.speakers import detect_language
from bot.importers import PackDraft
from bot.importers.drafts import one_line, scene_line
from bot.messages import Reply

MIN_PERSONA_CHARS = 10
MAX_NAME_CHARS = 64
SKIP = frozenset({"-", "—", "none", "no", "skip", "无", "没有", "跳过"})
FIELDS = {
    "persona": ("persona", "人设", "设定", "性格"),
    "aliases": ("aliases", "alias", "别名", "称呼"),
    "greeting": ("greeting", "开场白", "问候"),
    "description": ("description", "简介"),
    "examples": ("examples", "example", "示例", "例句", "对话"),
}
_FIELD_NAMES = {name: key for key, names in FIELDS.items() for name in names}
_FIELD_LINE = re.compile(r"^\s*([^\s:：]{1,12})\s*[:：]\s*(.*)$")
_EXAMPLE_LINE = re.compile(r"^\s*([^:：「」]{1,32}?)\s*[:：]\s*(.+)$")
_ALIAS_SEPARATORS = re.compile(r"[,，、;；/]+")

USAGE = "<id> <name> (then answer the questions, or put persona:/aliases:/greeting:/examples: lines below)"


def _skipped(text: str) -> bool:
    return text.strip().casefold() in SKIP


def example_scenes(text: str, name: str) -> list[list[str]]:
    """Example lines as scenes: ``Someone: line`` keeps its speaker, a bare line is the character's;
    a blank line starts a new scene."""
    scenes: list[list[str]] = [[]]
    for raw in text.splitlines():
        if not raw.strip():
            if scenes[-1]:
                scenes.append([])
            continue
        match = _EXAMPLE_LINE.match(raw)
        speaker, words = (match[1], match[2]) if match else (name, raw)
        if (line := scene_line(speaker, words)) is not None:
            scenes[-1].append(line)
    return [scene for scene in scenes if scene]


@dataclass(slots=True)
class NewCharacter:
    """The answers so far; :meth:`draft` turns them into a pack."""

    pack_id: str
    name: str
    persona: str = ""
    aliases: list[str] = field(default_factory=list)
    greeting: str = ""
    description: str = ""
    examples: str = ""

    def set_aliases(self, text: str) -> None:
        names = (alias.strip() for alias in _ALIAS_SEPARATORS.split(text))
        self.aliases = [alias[:MAX_NAME_CHARS] for alias in names if alias and alias != self.name]

    def scenes(self) -> list[list[str]]:
        scenes = example_scenes(self.examples, self.name)
        if not scenes and self.greeting and (line := scene_line(self.name, self.greeting)) is not None:
            scenes = [[line]]
        return scenes

    def draft(self) -> PackDraft:
        scenes = self.scenes()
        if not scenes:
            raise CommandError(f"{self.name} needs at least one example line or a greeting.")
        texts = [self.name, self.persona, self.greeting, self.examples]
        return PackDraft(
            name=self.name,
            language=detect_language(texts),
            scenes=scenes,
            persona=self.persona,
            aliases=self.aliases,
            description=self.description or one_line(self.persona),
            greeting=self.greeting,
        )


def parse_fields(body: str) -> dict[str, str]:
    """``persona: ...`` / ``examples:`` sections of a one-message create; text before any field name
    is the persona."""
    found: dict[str, list[str]] = {}
    current = "persona"
    for line in body.splitlines():
        match = _FIELD_LINE.match(line)
        if match is not None and (key := _FIELD_NAMES.get(match[1].casefold())) is not None:
            current = key
            found.setdefault(current, [])
            if match[2].strip():
                found[current].append(match[2])
            continue
        found.setdefault(current, []).append(line)
    return {key: "\n".join(lines).strip() for key, lines in found.items() if "\n".join(lines).strip()}


async def handle_create(context: CommandContext, args: str) -> Reply:
    head, _, body = args.partition("\n")
    pack_id, name = split_first(head)
    pack_id = pack_id.casefold()
    name = " ".join(name.split())[:MAX_NAME_CHARS]
    if not pack_id or not name:
        raise CommandError(f"Usage: /character create {USAGE}")
    if not PACK_ID.match(pack_id):
        raise CommandError(
            f"{pack_id!r} cannot be an id: use 1-32 lowercase letters, digits, '-' or '_' (e.g. wren)."
        )
    if pack_id in context.packs or (context.catalog.directory / pack_id).exists():
        raise CommandError(f"The id {pack_id!r} is taken; pick another one.")
    new = NewCharacter(pack_id, name)
    if body.strip():
        fields = parse_fields(body)
        new.persona = fields.get("persona", "")
        new.set_aliases(fields.get("aliases", ""))
        new.greeting = fields.get("greeting", "")
        new.description = one_line(fields.get("description", ""))
        new.examples = fields.get("examples", "")
        if len(new.persona) < MIN_PERSONA_CHARS:
            raise CommandError(f"Give {name} a persona: a 'persona:' line saying who they are.")
        return await _finish(context, new)
    return _ask(
        context,
        Interview(new).persona,
        f"Creating {name} ({pack_id}). 1/4 — Who is {name}? "
        "Describe them in one message: who they are, how they talk, what they care about. "
        "(/cancel stops)",
    )


def _ask(context: CommandContext, step: Handler, question: str) -> Reply:
    context.expect(step)
    return Reply(question)


@dataclass(slots=True)
class Interview:
    """The guided create: each method takes one answer and asks the next question."""

    new: NewCharacter

    async def persona(self, context: CommandContext, text: str) -> Reply:
        if len(text.strip()) < MIN_PERSONA_CHARS:
            context.expect(self.persona)
            raise CommandError(f"A few more words about {self.new.name}, please (or /cancel).")
        self.new.persona = text.strip()
        return _ask(
            context,
            self.aliases,
            f"2/4 — Other names people call {self.new.name} by, separated by commas ('-' for none).",
        )

    async def aliases(self, context: CommandContext, text: str) -> Reply:
        if not _skipped(text):
            self.new.set_aliases(text)
        return _ask(
            context,
            self.greeting,
            f"3/4 — What does {self.new.name} say when a chat switches to them? ('-' for nothing)",
        )

    async def greeting(self, context: CommandContext, text: str) -> Reply:
        if not _skipped(text):
            self.new.greeting = " ".join(text.split())
        return _ask(
            context,
            self.examples,
            f"4/4 — A few example lines, one per line: 'Someone: …' for "
            f"others, or just what {self.new.name} says; a blank line starts a new scene. "
            "('-' to skip)",
        )

    async def examples(self, context: CommandContext, text: str) -> Reply:
        self.new.examples = "" if _skipped(text) else text
        if not self.new.scenes():
            context.expect(self.examples)
            raise CommandError(f"{self.new.name} has no greeting, so give at least one example line.")
        return await _finish(context, self.new)


async def _finish(context: CommandContext, new: NewCharacter) -> Reply:
    try:
        pack = await context.catalog.create(new.draft(), new.pack_id, report_to=context.incoming.key)
    except PackError as exc:
        raise CommandError(f"Could not create {new.name}: {exc.reason}") from None
    aliases = f", called {', '.join(pack.aliases)}" if pack.aliases else ""
    return Reply(
        f"Created {pack.name} ({pack.id}{aliases}): {len(pack.scenes)} scene(s). "
        f"Live in every chat now: /switch {pack.id}"
    )
