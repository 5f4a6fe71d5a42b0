"""The console's FastAPI application: login, the session check, and the pages' shared layout."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from plugins.web.auth import LOGIN_COOKIE, SESSION_COOKIE, Gate, Session, same
from plugins.web.characters import add_character_routes
from plugins.web.groups import add_group_routes
from plugins.web.inspector import add_inspector_routes
from plugins.web.playground import add_playground_routes

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PREFIX = "/console"


class LoginRequired(Exception):
    """Raised by :meth:`WebConsole.session` for a request without a live session."""


class WebConsole:
    """The console: a FastAPI app to mount at :data:`PREFIX`, and the runtime it serves."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.gate = Gate(config.console)
        self.runtime: Runtime | None = None
        self.prefix = PREFIX
        self._on_attach: list[Callable[[Runtime], None]] = []
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        self.app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
        self.app.add_exception_handler(LoginRequired, self._login_required)
        self._routes()

    @property
    def base_url(self) -> str:
        server = self.config.server
        return f"http://{server.host}:{server.port}"

    def attach(self, runtime: Runtime | None) -> None:
        """Serve ``runtime`` (``None`` at shutdown); at start, log how to log in."""
        self.runtime = runtime
        if runtime is None:
            return
        for hook in self._on_attach:
            hook(runtime)
        link = self.gate.login_link(self.base_url)
        if link is None:
            log.info(
                "web console: %s%s/ (log in with the token in $%s)",
                self.base_url,
                PREFIX,
                self.config.console.token_env,
            )
        else:
            log.info(
                "web console: open %s (a one-time login link; set $%s for a lasting token)",
                link,
                self.config.console.token_env,
            )

    def on_attach(self, hook: Callable[[Runtime], None]) -> None:
        """Run ``hook`` with the runtime each time one is attached (a page's outbox, say)."""
        self._on_attach.append(hook)

    # ------------------------------------------------------------------ what every page needs

    def live(self) -> Runtime:
        """The runtime, or 503 while the bot is starting or stopping."""
        if self.runtime is None:
            raise HTTPException(503, "The bot is starting; try again in a moment.")
        return self.runtime

    def session(self, request: Request) -> Session:
        """The request's session; a POST must also carry its CSRF token (form field or header)."""
        session = self.gate.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise LoginRequired
        return session

    async def checked(self, request: Request) -> tuple[Session, dict[str, Any]]:
        """A POST's session and form, its CSRF token checked (403 when it is wrong)."""
        session = self.session(request)
        form = dict(await request.form())
        given = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
        if not same(given, session.csrf):
            raise HTTPException(403, "This form has expired: reload the page and try again.")
        return session, form

    def page(self, request: Request, template: str, session: Session | None, **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request, template, {"prefix": PREFIX, "csrf": session.csrf if session else "", **context}
        )

    @staticmethod
    def _login_required(request: Request, _exc: Exception) -> Response:
        if request.method == "GET" and not request.url.path.startswith(f"{PREFIX}/api/"):
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
        return Response("Log in first.", status_code=401)

    # ------------------------------------------------------------------ routes

    def _routes(self) -> None:
        app = self.app

        @app.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request, code: str = "", next: str = "") -> Response:
            address = request.client.host if request.client else "?"
            if code:
                if (wait := self.gate.wait_s(address)) > 0:
                    return self._too_many(wait)
                if self.gate.use_code(address, code):
                    log.info(
                        "web console: the one-time link was used; the next one: %s",
                        self.gate.login_link(self.base_url),
                    )
                    return self._logged_in(request, next)
            csrf = secrets.token_urlsafe(24)
            response = self.page(request, "login.html", None, next=next, failed=bool(code), login_csrf=csrf)
            response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, samesite="strict", path=PREFIX)
            return response

        @app.post("/login")
        async def login(request: Request) -> Response:
            address = request.client.host if request.client else "?"
            if (wait := self.gate.wait_s(address)) > 0:
                return self._too_many(wait)
            form = await request.form()
            if not same(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE) or "\0"):
                return Response("This form has expired: reload the page and try again.", status_code=403)
            if not self.gate.check_token(address, str(form.get("token") or "")):
                response = self.page(
                    request,
                    "login.html",
                    None,
                    next=str(form.get("next") or ""),
                    failed=True,
                    login_csrf=str(form.get("csrf")),
                )
                response.status_code = 401
                return response
            return self._logged_in(request, str(form.get("next") or ""))

        @app.post("/logout")
        async def logout(request: Request) -> Response:
            await self.checked(request)
            self.gate.close_session(request.cookies.get(SESSION_COOKIE))
            response = RedirectResponse(f"{PREFIX}/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path=PREFIX)
            return response

        @app.get("/", response_class=HTMLResponse)
        async def overview(request: Request) -> Response:
            session = self.session(request)
            runtime = self.live()
            packs = sorted(runtime.packs, key=lambda pack: pack.id)
            return self.page(request, "overview.html", session, packs=packs, model=runtime.model.name)

        add_playground_routes(self)
        add_inspector_routes(self)
        add_character_routes(self)
        add_group_routes(self)

    def _logged_in(self, request: Request, next: str) -> Response:
        session_id, _session = self.gate.open_session()
        target = next if next.startswith(f"{PREFIX}/") and "//" not in next else f"{PREFIX}/"
        response = RedirectResponse(target, status_code=303)
        secure = request.url.scheme == "https"
        max_age = int(self.config.console.session_hours * 3600)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=secure,
            path=PREFIX,
        )
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @staticmethod
    def _too_many(wait: float) -> Response:
        return Response(
            f"Too many wrong tokens from this address: try again in {wait:.0f} s.",
            status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )
