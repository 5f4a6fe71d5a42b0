"""Persistence: SQLAlchemy 2 async models, the database handle, migrations and the repository."""

from __future__ import annotations

from storage.db import Database
from storage.repository import ChatState, Repository, StoredMessage

__all__ = ["ChatState", "Database", "Repository", "StoredMessage"]
