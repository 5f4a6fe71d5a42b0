"""The schemas of a pack's own files: ``character.toml`` (:class:`PackSettings`, with its ``[voice]``
and ``[llm]`` tables) and ``lorebook.json`` (:class:`Lorebook`). :mod:`bot.engine.packs` loads a pack
and turns their errors into a :class:`~bot.errors.PackError` naming the file and line."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def _one_or_several(value: object) -> object:
    """A line of ``character.toml`` given as one string or as a list of them, as a list (blank
    lines dropped)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [line for line in value if not isinstance(line, str) or line.strip()]
    return value


Lines = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_one_or_several)]
"""Lines a character says in a given case; ``"..."`` or ``["...", "..."]`` in ``character.toml``."""


class PackVoice(BaseModel):
    """The ``[voice]`` table of ``character.toml``: how the character sounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["openai", "kokoro", "espeak"] | None = None
    """Unset: ``[voice] engine``."""
    voice: str = ""
    """The engine's voice: ``jf_alpha`` (Kokoro), ``cmn`` (espeak-ng), ``alloy`` (OpenAI)…; empty =
    the engine's default."""
    language: str = ""
    """What the voice speaks (``ja``, ``zh``, ``yue``, ``en``); empty = ``translate_to``, else the
    pack's ``language``."""
    translate_to: str = ""
    """Speak a translation: the reply (in the chat's language) is translated into this language by the
    chat model before it is spoken, as ChatHaruhi spoke Japanese. Empty = speak the reply as it is."""
    speed: float = Field(1.0, ge=0.5, le=2.0)

    def spoken_language(self, pack_language: str) -> str:
        return self.language or self.translate_to or pack_language


class PackLLM(BaseModel):
    """The ``[llm]`` table of ``character.toml``: the model this character answers through, instead
    of the bot's own (``[llm]`` in ``bot.toml``). Unset keys take the bot's values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    base_url: str | None = None
    """An OpenAI-compatible endpoint (``https://…/v1``); unset: the bot's ``[llm] base_url``."""
    api_key_env: str | None = None
    """The name of the env variable holding the key (never the key itself); unset: the bot's."""
    style: Literal["chat", "completion"] = "chat"
    """``chat``: ``POST /chat/completions`` with messages. ``completion``: ``POST /completions``
    with the prompt as one scene-format script ending in ``Name:「`` (a base model trained on
    scripts)."""
    fallback: bool = True
    """When this model fails or cannot be reached, the bot's own model answers; ``false``: the
    character apologises instead."""
    timeout_s: float | None = Field(None, gt=0)
    """Longest wait for one request to this model; unset: the bot's ``[llm] timeout_s``."""
    max_retries: int | None = Field(None, ge=0, le=10)
    """Retries of a failed request; unset: the bot's ``[llm] max_retries``."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_url(value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


class PackSettings(BaseModel):
    """The ``character.toml`` schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    aliases: list[str] = Field(default_factory=list)
    language: Literal["en", "zh"] = "en"
    description: str = ""
    persona: str = Field(min_length=1)
    greeting: str = ""
    apology: str = ""
    deflection: Lines = Field(default_factory=list)
    """What the character says instead of a reply that broke character twice (in its own voice): one
    line or a list of them; a chat never hears the same one twice in a row."""
    slow_down: Lines = Field(default_factory=list)
    """What it says, once, to a chat or member past ``[groups]`` rate limits (one line or a list)."""
    spent: Lines = Field(default_factory=list)
    """What it says, once a day, to a chat or member past its ``[budgets]`` (one line or a list)."""
    one_moment: Lines = Field(default_factory=list)
    """What it says, once, to a chat whose message came while the offline model was still loading (one
    line or a list); the answer follows when the model is ready."""
    avatar: str | None = None
    """The character's picture: a file in the pack (``images/avatar.png``) or an ``https://`` URL."""
    top_k: int | None = Field(None, ge=0, le=50)
    """Overrides ``[retrieval] top_k`` for this character."""
    max_chars: int | None = Field(None, ge=20)
    """Overrides ``[reply] max_chars`` for this character."""
    image_min_similarity: float | None = Field(None, ge=-1, le=1)
    """Overrides ``[images] min_similarity`` for this character's screenshots."""
    image_min_overlap: float | None = Field(None, ge=0, le=1)
    """Overrides ``[images] min_overlap`` for this character's screenshots."""
    voice: PackVoice = PackVoice()
    """How the character sounds when a chat turned ``/voice`` on."""
    llm: PackLLM | None = None
    """The character's own model; unset: it answers through the bot's ``[llm]``."""


class LoreEntry(BaseModel):
    """Knowledge the prompt gets when one of its keys appears in the recent conversation.

    The fields follow SillyTavern's ``character_book`` entries, so a card's lorebook imports as it is.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    keys: list[str] = Field(default_factory=list)
    content: str = Field(min_length=1)
    name: str = ""
    enabled: bool = True
    constant: bool = False
    """Always inserted, keys or not."""
    case_sensitive: bool = False
    insertion_order: int = 100
    """Lower comes first in the prompt (and is kept first when the budget runs out)."""


class Lorebook(BaseModel):
    """The ``lorebook.json`` schema."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    entries: list[LoreEntry] = Field(default_factory=list)
