"""Who may use the web console: one token (or a one-time link), sessions, CSRF tokens, login limits.

Everyone who logs in holds the whole bot (a superuser's right): the token is the owner's. So every
route but the login page is behind :meth:`Gate.session`, and every POST also needs the session's
CSRF token. Sessions live in this process's memory (a restart logs everyone out); the cookie is
HttpOnly, SameSite=Strict and limited to ``/console``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import WebConsoleConfig

log = logging.getLogger(__name__)

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
"""Holds the CSRF token of the login form, before there is a session."""
MAX_SESSIONS = 1000
MAX_WATCHED = 10_000
"""Addresses whose failed logins are remembered at most (the oldest forgotten first)."""


@dataclass(slots=True)
class Session:
    """One login: until when it lasts, and the token its forms must carry."""

    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Gate:
    """Logs people in and knows their sessions; see the module docstring."""

    def __init__(self, config: WebConsoleConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._token = config.token()
        self._code: str | None = None if self._token else secrets.token_urlsafe(32)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def code(self) -> str | None:
        """The one-time login code, when no token is set (:meth:`login_link` shows it)."""
        return self._code

    def login_link(self, base_url: str) -> str | None:
        """The one-time link to log in with, ``None`` when a token is set."""
        return None if self._code is None else f"{base_url.rstrip('/')}/console/login?code={self._code}"

    # ------------------------------------------------------------------ logging in

    def wait_s(self, address: str) -> float:
        """Seconds ``address`` must wait before it may try again (0: it may now)."""
        failures = self._failures.get(address)
        if failures is None:
            return 0.0
        horizon = self._clock() - self.config.login_window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if len(failures) < self.config.login_attempts:
            return 0.0
        return failures[0] - horizon

    def check_token(self, address: str, token: str) -> bool:
        """Whether ``token`` is the console's; a wrong one counts against ``address``."""
        if self._token is not None and same(token.strip(), self._token):
            return True
        self._failed(address)
        return False

    def use_code(self, address: str, code: str) -> bool:
        """Whether ``code`` is the current one-time code; using it makes the next one (logged)."""
        if self._code is not None and same(code, self._code):
            self._code = secrets.token_urlsafe(32)
            return True
        self._failed(address)
        return False

    def _failed(self, address: str) -> None:
        failures = self._failures.setdefault(address, deque())
        self._failures.move_to_end(address)
        failures.append(self._clock())
        while len(self._failures) > MAX_WATCHED:
            self._failures.popitem(last=False)
        log.warning("web console: a failed login from %s", address)

    # ------------------------------------------------------------------ sessions

    def open_session(self) -> tuple[str, Session]:
        """A new session and the id its cookie carries."""
        session_id = secrets.token_urlsafe(32)
        session = Session(self._clock() + self.config.session_hours * 3600)
        self._sessions[session_id] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id, session

    def session(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` names, if any."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def close_session(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)
