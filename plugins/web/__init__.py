"""The web console: pages on NoneBot's own FastAPI app, under ``/console/``.

:class:`WebConsole` is a FastAPI sub-application mounted by :func:`plugins.host.run`; the runtime is
attached once the bot has started (pages answer 503 until then). It calls the same services the chat
commands use, never a second way to change a pack or a setting. See ``docs/web-console.md``.
"""

from plugins.web.app import PREFIX, WebConsole

__all__ = ["PREFIX", "WebConsole"]
