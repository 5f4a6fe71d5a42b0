"""The packs the bot serves, found by id, name, alias or a close misspelling, and called by name in a
message (``Orla, ...`` / ``小满，...`` / ``@Orla``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.engine.packs import CharacterPack


@dataclass(slots=True, frozen=True)
class PackMatch:
    """The result of looking a character up by a name someone typed."""

    pack: CharacterPack | None
    candidates: tuple[CharacterPack, ...] = ()


def _fold(name: str) -> str:
    return name.casefold().strip()


_CALL_JOINER = re.compile(r"^\s*(?:and|&|和|跟|与|还有)\s*", re.IGNORECASE)
_AT_NAME = re.compile(r"(?<![\w.])([@＠][^\s@＠,，:：!！?？.。]+)")
_SPACES = re.compile(r"\s{2,}")
_DANGLING_COMMA = re.compile(r"[\s,，]+([?？!！.。]|$)")


class PackRegistry:
    """The packs the bot serves, found by id, name, alias, or a close misspelling of one."""

    def __init__(self, packs: Iterable[CharacterPack] = ()) -> None:
        self._packs: dict[str, CharacterPack] = {}
        self._spoken: frozenset[str] | None = None
        for pack in packs:
            self.add(pack)

    def add(self, pack: CharacterPack) -> None:
        """Serve ``pack``, in place of the one with its id if there is one."""
        self._packs[pack.id] = pack
        self._spoken = None

    def remove(self, pack_id: str) -> CharacterPack | None:
        self._spoken = None
        return self._packs.pop(pack_id, None)

    def get(self, pack_id: str) -> CharacterPack | None:
        return self._packs.get(pack_id)

    def __iter__(self) -> Iterator[CharacterPack]:
        return iter(self._packs.values())

    def __len__(self) -> int:
        return len(self._packs)

    def __contains__(self, pack_id: object) -> bool:
        return pack_id in self._packs

    def spoken_names(self) -> frozenset[str]:
        """Every character's name and aliases, casefolded: names no member may go by in a prompt
        (read for every message, so kept until the packs change)."""
        if self._spoken is None:
            self._spoken = frozenset(name.casefold() for pack in self for name in (pack.name, *pack.aliases))
        return self._spoken

    def match(self, query: str) -> PackMatch:
        """Find the pack meant by ``query``.

        Exact id/name/alias wins; then names that start with or contain the query; then close
        misspellings. More than one candidate at the first level that has any is ambiguous:
        ``pack`` is ``None`` and ``candidates`` lists them.
        """
        wanted = _fold(query)
        if not wanted:
            return PackMatch(None)
        levels: list[list[CharacterPack]] = [[], [], []]
        for pack in self:
            names = [_fold(name) for name in pack.names]
            if wanted in names:
                levels[0].append(pack)
            elif any(name.startswith(wanted) or wanted in name for name in names):
                levels[1].append(pack)
            elif any(difflib.SequenceMatcher(None, wanted, name).ratio() >= 0.75 for name in names):
                levels[2].append(pack)
        for found in levels:
            if len(found) == 1:
                return PackMatch(found[0], tuple(found))
            if found:
                return PackMatch(None, tuple(found))
        return PackMatch(None)

    def called(self, text: str, limit: int) -> tuple[list[CharacterPack], str]:
        """Every character ``text`` calls, in order, at most ``limit``; and the text without the calls.

        A message may open with several names (``Orla, 小满, what do you think?``, ``@Orla @小满 hi``,
        ``Orla and Tam: ...``) and may ``@`` a character anywhere (``what do you say, @小满?``).
        """
        found: list[CharacterPack] = []
        rest = text.strip()
        while (call := self.called_at_start(rest.removeprefix("@").removeprefix("＠"))) is not None:
            pack, rest = call
            if pack not in found:
                found.append(pack)
            rest = _CALL_JOINER.sub("", rest, count=1)
        words: list[str] = []
        for word in _AT_NAME.split(rest):
            named = self._named_exactly(word[1:]) if _AT_NAME.fullmatch(word) else None
            if named is None:
                words.append(word)
            elif named not in found:
                found.append(named)
        cleaned = _DANGLING_COMMA.sub(r"\1", _SPACES.sub(" ", "".join(words))).strip(" ,，")
        return found[:limit], cleaned

    def _named_exactly(self, name: str) -> CharacterPack | None:
        folded = _fold(name)
        return next((pack for pack in self if folded in (_fold(other) for other in pack.names)), None)

    def called_at_start(self, text: str) -> tuple[CharacterPack, str] | None:
        """The pack whose name or alias opens ``text`` as a call (``Orla, ...`` / ``小满，...``).

        Returns the pack and the rest of the message. A Latin name must be followed by a
        separator (so "Orlando" does not call Orla); a Chinese name may be followed by anything.
        The longest matching name wins.
        """
        stripped = text.lstrip()
        folded = stripped.casefold()
        best: tuple[int, CharacterPack] | None = None
        for pack in self:
            for name in (pack.name, *pack.aliases):
                key = name.casefold()
                if not key or not folded.startswith(key):
                    continue
                rest = stripped[len(key) :]
                if key[-1].isascii() and rest and rest[0].isalnum() and rest[0].isascii():
                    continue
                if best is None or len(key) > best[0]:
                    best = (len(key), pack)
        if best is None:
            return None
        rest = stripped[best[0] :].lstrip(" ,，:：、!！?？~～.。-—")
        return best[1], rest
