"""The one error the storage layer raises on purpose (the core's :mod:`bot.errors` shows it in its tree)."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not be opened, migrated or written; the message says what to do."""
