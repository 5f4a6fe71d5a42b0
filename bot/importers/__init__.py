"""Importing character data people already have, and exporting packs for other tools.

``import_pack`` tells the format of its source and converts it into a pack folder beside
``characters/<id>``, validated with :func:`bot.engine.packs.load_pack` before it is moved into place:

=====================  ==================================================================
format                 source
=====================  ==================================================================
``pack-folder``        our own pack, a folder with ``character.toml``
``pack-zip``           the same zipped (at the root or in one top folder)
``card-png``           a SillyTavern Character Card V2/V3 PNG (``chara`` / ``ccv3`` chunk)
``card-json``          a card as JSON (V1 flat fields, or V2/V3)
``charx``              a CHARX card: a zip with ``card.json`` and assets
``chatharuhi-jsonl``   ChatHaruhi role data: a system prompt row and one story per row
``chatharuhi-folder``  ChatHaruhi's ``system_prompt.txt`` + ``texts/*.txt``
``qa``                 ``Asker: question`` / ``Name: answer`` pairs
``transcript``         ``Name: line`` per line, a blank line between scenes
=====================  ==================================================================

Every input is bounded by :class:`ImportLimits`; every problem is a :class:`~bot.errors.PackError`
naming the file (and entry, line or field), and leaves ``characters_dir`` as it was. The modules:
:mod:`.limits` (bounds, images), :mod:`.archives` (safe unzip), :mod:`.drafts` (writing a pack),
:mod:`.cards`, :mod:`.chatharuhi`, :mod:`.corpora`, :mod:`.packs` (the formats), :mod:`.install`
(detect, import, remove) and :mod:`.export` (zip, card).
"""

from __future__ import annotations

from bot.importers.drafts import PackDraft
from bot.importers.export import export_card, export_zip
from bot.importers.install import (
    FORMATS,
    ImportResult,
    detect_format,
    import_pack,
    install_draft,
    remove_pack,
)
from bot.importers.limits import ImportLimits

__all__ = [
    "FORMATS",
    "ImportLimits",
    "ImportResult",
    "PackDraft",
    "detect_format",
    "export_card",
    "export_zip",
    "import_pack",
    "install_draft",
    "remove_pack",
]
