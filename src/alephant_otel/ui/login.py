"""Who may look: with virtual keys, a viewer logs in with a key and sees only its workspace.

The key is checked once, at login (by its SHA-256, like export calls); the browser then holds
a random session token in an HttpOnly, SameSite=Strict cookie. The key itself is never kept,
logged or put in a cookie. Every request re-checks that the session's key is still active,
so revoking a key ends its sessions at once. The server's admin token (from
`<db>.server.json`, the local operator) logs in to every workspace. Without keys (and without
--require-auth) there is no login and every workspace is shown.
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from .layout import Viewer

COOKIE = "alephant_ui"
TTL_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


@dataclass
class _Session:
    viewer: Viewer
    expires: float


class Logins:
    def __init__(self, store, auth, admin_token: str | None = None):
        self.store = store
        self.auth = auth
        self.admin_token = admin_token
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return self.auth.required

    def login(self, key: str) -> str | None:
        """A session token for a valid key (or the admin token), else None."""
        key = (key or "").strip()
        if not key:
            return None
        if self.admin_token and hmac.compare_digest(key.encode(), self.admin_token.encode()):
            viewer = Viewer(None, "admin: every workspace", logged_in=True)
        else:
            vk = self.auth.key_for(key)
            if vk is None:
                return None
            viewer = Viewer(vk.workspace_id, f"workspace {vk.workspace_id} (key {vk.key_id})", True, vk.key_id)
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {t: s for t, s in self._sessions.items() if s.expires > now}
            while len(self._sessions) >= MAX_SESSIONS:  # oldest out
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[token] = _Session(viewer, now + TTL_SECONDS)
        return token

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def viewer(self, token: str | None) -> Viewer | None:
        """The viewer of a request: everyone when no login is required; else the session's
        viewer while its key is active; None means "log in"."""
        if not self.required:
            return Viewer()
        with self._lock:
            s = self._sessions.get(token or "")
            if s is not None and s.expires <= time.monotonic():
                self._sessions.pop(token, None)
                s = None
        if s is None:
            return None
        if s.viewer.key_id is not None and not self._active(s.viewer.key_id):
            self.logout(token)
            return None
        return s.viewer

    def _active(self, key_id: str) -> bool:
        rows = self.store.query("SELECT 1 FROM _virtual_keys WHERE key_id = $id AND revoked_at IS NULL",
                                {"id": key_id}).num_rows
        return rows > 0
