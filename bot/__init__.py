"""A role-play group-chat bot: many characters, one engine, each group with its own memory."""

from __future__ import annotations

__version__ = "0.1.0"
