"""Discord on discord.py: the same router, engine and storage as OneBot, in the same event loop.

:class:`DiscordBridge` owns a discord.py client. Messages become
:class:`~bot.messages.Incoming` (:mod:`.incoming`), replies are posted as the character through
a channel webhook or as the bot (:mod:`.outgoing`), and the chat commands are also slash
commands (:mod:`.slash`).
"""

from plugins.discord_bridge.bridge import DiscordBridge

__all__ = ["DiscordBridge"]
