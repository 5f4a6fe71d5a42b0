"""The bot's exception tree.

Every error the bot raises on purpose is a :class:`BotError`, with a message written for the person
who has to fix the problem (an operator editing ``bot.toml``, a pack author, a group member typing a
command)::

    BotError
    ├── ConfigError          bot.toml is missing, malformed, or names a bad value
    ├── PackError            a character pack is malformed (carries file and line)
    ├── ModelError           the chat model could not answer
    │   └── ModelTimeout     ... because it took too long
    ├── EmbeddingError       the embedding model could not be loaded or run
    ├── SendError            a platform refused to post a message
    │   └── AccountAway      ... because the account is not connected right now
    ├── ExtractError         the extraction tool's input is unusable (names the file)
    ├── SpeechError          a voice could not be made (engine missing, refused, too slow)
    ├── ExportError          training data cannot be exported (names the source or the record)
    └── CommandError         a chat command was used wrongly
        ├── PermissionDenied ... by someone without the level it needs
        └── AttachmentError  ... with a file that cannot be fetched (gone, too big, unreachable)

    StorageError             the database could not be opened or migrated (raised by ``storage``,
                             which the core depends on and never the other way round; catch it beside
                             BotError where the bot stops with a message)

A part of the bot that needs a package of an optional extra (``pip install -e ".[eval]"`` …) imports it
where it is used and, when it is missing, raises its own error built by :func:`missing_extra`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from storage.errors import StorageError

__all__ = ["StorageError"]

E = TypeVar("E", bound="BotError")


class BotError(Exception):
    """Base class of every error the bot raises on purpose."""


class ConfigError(BotError):
    """``bot.toml`` cannot be used; the message names the key and what is wrong."""


class PackError(BotError):
    """A character pack is malformed.

    ``path`` is the offending file and ``line`` its 1-based line number when one applies, so the
    message reads like a compiler error: ``characters/orla/scenes/003.txt:7: ...``.
    """

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class ModelError(BotError):
    """The chat model failed to produce a reply (after retries)."""


class ModelTimeout(ModelError):
    """The chat model did not answer in time: ``[llm] timeout_s`` for a request, or the reply's
    ``[llm] reply_deadline_s``."""


class EmbeddingError(BotError):
    """The embedding model could not be loaded or could not embed."""


class ExtractError(BotError):
    """``python -m bot extract`` cannot use its input; nothing has been written."""


class SpeechError(BotError):
    """A voice could not be made: the engine is missing, refused, failed or took too long."""


class ExportError(BotError):
    """``python -m bot export training`` cannot use a source or would write an invalid record."""


class SendError(BotError):
    """A platform refused to post a message (its error code is in the message); it is retried."""


class AccountAway(SendError):
    """The bot account that should post is not connected right now; the reply waits for it."""


class JobError(BotError):
    """A scheduled job could not do its work this time (it is retried later)."""


class CommandError(BotError):
    """A chat command was used wrongly; the message is shown to the user as is."""


class PermissionDenied(CommandError):
    """The user lacks the permission level a command needs."""


class AttachmentError(CommandError):
    """A file sent in a chat cannot be fetched; the message says which file and why."""


def missing_extra(error: type[E], what: str, package: str, extra: str) -> E:
    """``error`` saying that ``what`` needs ``package``, which the ``extra`` extra installs.

    ``raise missing_extra(ExtractError, "reading subtitles", "pysubs2", "extract") from exc`` reads
    ``reading subtitles needs pysubs2: pip install -e ".[extract]"``.
    """
    return error(f'{what} needs {package}: pip install -e ".[{extra}]"')
