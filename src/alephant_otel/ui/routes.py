"""The web view's routes on the receiver's HTTP server (aiohttp), all under /ui.

Each page is rendered in a small thread pool of its own (queries run there, off the event
loop, so exports keep flowing and at most two pages query at once). Every response carries a
Content-Security-Policy that allows no script at all and only our own stylesheet.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from urllib.parse import urlparse

from aiohttp import web

from .html import h, url
from .layout import BadRequest, NotFound, Page, document, error_page
from .login import COOKIE, TTL_SECONDS, Logins
from .pages import groups, overview, run, session, sessions

log = logging.getLogger(__name__)

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # (no-referrer would make form posts send Origin: null)
    "Cache-Control": "no-store",
}
STATIC = {"ui.css": "text/css", "icon.svg": "image/svg+xml"}
PAGES = [("/ui", overview.render, "/ui"), ("/ui/", overview.render, "/ui"),
         ("/ui/sessions", sessions.render, "/ui/sessions"), ("/ui/session", session.render, "/ui/sessions"),
         ("/ui/run", run.render, "/ui/sessions"), ("/ui/agents", groups.renderer("agents"), "/ui/agents"),
         ("/ui/endpoints", groups.renderer("endpoints"), "/ui/endpoints"),
         ("/ui/prompts", groups.renderer("prompts"), "/ui/prompts")]


def _html(status: int, body: str, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers={**HEADERS, **(headers or {})})


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def _safe_next(target: str | None) -> str:
    """Only our own pages: a path under /ui, never another host."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return "/ui"
    return target


class Ui:
    def __init__(self, store, auth, admin_token: str | None = None):
        self.store = store
        self.logins = Logins(store, auth, admin_token)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="ui-query")

    def routes(self) -> list[tuple[str, str, object]]:
        out = [("GET", path, self._page(render, active)) for path, render, active in PAGES]
        out += [("GET", "/ui/login", self._login_form), ("POST", "/ui/login", self._login),
                ("POST", "/ui/logout", self._logout), ("GET", "/ui/static/{name}", self._static),
                ("GET", "/ui/{tail:.*}", self._not_found)]
        return out

    def _page(self, render, active: str):
        async def handle(request: web.Request) -> web.Response:
            token, query, path = request.cookies.get(COOKIE), request.query, request.path_qs
            status, body, headers = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._render, render, active, token, query, path)
            return _redirect(headers["Location"]) if status == 303 else _html(status, body, headers)
        return handle

    def _render(self, render, active, token, query, path):
        viewer = None
        try:
            viewer = self.logins.viewer(token)
            if viewer is None:
                return 303, "", {"Location": url("/ui/login", next=path)}
            title, body = render(Page(self.store, viewer), query)
            return 200, document(title, body, viewer, active), {}
        except BadRequest as exc:
            return 400, error_page(400, str(exc), viewer), {}
        except NotFound as exc:
            return 404, error_page(404, str(exc), viewer), {}
        except Exception:  # a failed query must not take the server down or leak a stack trace
            log.exception("web view: %s failed", path.split("?", 1)[0])
            return 500, error_page(500, "The page could not be built; the server log says why.", viewer), {}

    async def _login_form(self, request: web.Request) -> web.Response:
        if not self.logins.required:
            return _redirect("/ui")
        return _html(200, login_page(request.query.get("next"), None))

    async def _login(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            return _html(403, error_page(403, "Log in from this server's own page.", None))
        form = await request.post()
        target = _safe_next(form.get("next"))
        token = await asyncio.get_running_loop().run_in_executor(self._pool, self.logins.login, form.get("key", ""))
        if token is None:
            return _html(401, login_page(target, "That key is not valid (unknown or revoked)."))
        resp = _redirect(target)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/ui", max_age=TTL_SECONDS)
        return resp

    async def _logout(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            return _html(403, error_page(403, "Log out from this server's own page.", None))
        self.logins.logout(request.cookies.get(COOKIE))
        resp = _redirect("/ui/login")
        resp.del_cookie(COOKIE, path="/ui")
        return resp

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            return _html(404, error_page(404, "No such file.", None))
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name],
                            headers={**HEADERS, "Cache-Control": "max-age=300"})

    async def _not_found(self, request: web.Request) -> web.Response:
        return _html(404, error_page(404, f"No page {request.path!r}.", None))


def _same_origin(request: web.Request) -> bool:
    """A form post from our own page (browsers send Origin with every POST)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.host


def login_page(target: str | None, error: str | None) -> str:
    err = h('<p class="error" role="alert">{}</p>', error) if error else ""
    body = h('<h1>Log in</h1><p>This server has virtual keys: log in with one to see its workspace '
             '(or with the admin token in <code>&lt;db&gt;.server.json</code> to see every workspace).</p>{}'
             '<form class="login" method="post" action="/ui/login"><input type="hidden" name="next" value="{}">'
             '<label>virtual key <input type="password" name="key" autocomplete="off" required autofocus></label>'
             '<button type="submit">Log in</button></form>', err, _safe_next(target))
    return document("Log in", body, None)


def routes(store, auth, admin_token: str | None = None) -> list[tuple[str, str, object]]:
    """(method, path, handler) for HttpReceiver.extra_routes."""
    return Ui(store, auth, admin_token).routes()


__all__ = ["Ui", "routes"]
