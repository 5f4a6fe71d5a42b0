"""Reusable helpers for end-to-end tests.

Every helper talks to real local servers or processes on 127.0.0.1 instead of mocking, so the
tests exercise the same sockets, protocols and serialisation paths as production:

* :mod:`tests.support.openai_server` - an OpenAI-compatible chat-completions server.
* :mod:`tests.support.onebot_client` - a OneBot v11 implementation (the NapCat/Lagrange side)
  that connects to the bot's reverse WebSocket.
* :mod:`tests.support.bot_process` - runs the bot as a subprocess and writes its TOML config.
"""

from __future__ import annotations
