"""Persistence: SQLAlchemy 2 async models, the database handle, migrations and the stores."""

from __future__ import annotations

from storage.chats import ChatState
from storage.db import Database
from storage.messages import StoredMessage
from storage.repository import Repository

__all__ = ["ChatState", "Database", "Repository", "StoredMessage"]
