"""Which chat model ``[llm]`` asks for: an OpenAI-compatible endpoint, or the offline local model.

Kept apart from :mod:`bot.engine.model` so that the seam does not import its implementations.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from bot.engine.model import ChatModel, OpenAIChatModel

if TYPE_CHECKING:
    from bot.config import LLMConfig


def create_chat_model(config: LLMConfig, data_dir: Path, base_dir: Path | None = None) -> ChatModel:
    """The model ``[llm]`` asks for: the OpenAI-compatible endpoint, or the offline local model.

    A relative ``local_model`` path is taken relative to ``base_dir`` (the folder of ``bot.toml``).
    Without llama.cpp installed the offline model is a :class:`ModelError` here, at start, rather
    than an apology to every message.
    """
    if config.resolved_backend() == "openai":
        return OpenAIChatModel.from_config(config)
    from bot.engine.llama_server import llama_missing
    from bot.engine.local_model import LocalChatModel
    from bot.engine.local_weights import PACKAGED_MODELS

    if importlib.util.find_spec("xllamacpp") is None:
        raise llama_missing()

    local = Path(config.local_model)
    if base_dir is not None and config.local_model not in PACKAGED_MODELS and not local.is_absolute():
        config = config.model_copy(update={"local_model": str(base_dir / local)})
    return LocalChatModel.from_config(config, data_dir)
