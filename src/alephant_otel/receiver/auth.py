"""Who is calling: virtual keys on the export call (`Authorization: Bearer <key>`).

Auth is required as soon as one active key exists (or with `--require-auth`). A key's
workspace and department (and its id) are forced on every span of the call; its agent is the
default agent. Without keys, spans that name no workspace go to workspace `default`.
"""
from __future__ import annotations

import hmac
import threading

from ..errors import AlephantError
from ..mapping import Attribution
from ..store.keys import VirtualKey, all_keys, hash_key

DEFAULT_WORKSPACE = "default"
OPEN = Attribution(defaults={"workspace_id": DEFAULT_WORKSPACE})


class Unauthenticated(AlephantError):
    """Missing or unknown virtual key."""


def bearer(metadata) -> str | None:
    """The bearer token of an export call's `authorization` header, if any."""
    for name, value in metadata or ():
        if name.lower() == "authorization":
            v = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = v.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class Authenticator:
    def __init__(self, keys: list[VirtualKey] = (), require_auth: bool = False):
        self._lock = threading.Lock()
        self.require_auth = require_auth
        self._active: list[VirtualKey] = []
        self.set_keys(keys)

    @classmethod
    def from_store(cls, con, require_auth: bool = False) -> "Authenticator":
        return cls(all_keys(con), require_auth)

    def set_keys(self, keys) -> None:
        with self._lock:
            self._active = [k for k in keys if k.revoked_at is None]

    @property
    def required(self) -> bool:
        return self.require_auth or bool(self._active)

    def key_for(self, token: str | None) -> VirtualKey | None:
        if not token:
            return None
        digest = hash_key(token)
        found = None
        for k in self._active:  # compare every key in constant time; no early exit
            if hmac.compare_digest(k.key_hash, digest):
                found = k
        return found

    def attribution(self, metadata) -> Attribution:
        """The attribution an export call gets; raises Unauthenticated when auth is required
        and the call has no valid key."""
        key = self.key_for(bearer(metadata))
        if key is None:
            if self.required:
                raise Unauthenticated("a valid virtual key is required: Authorization: Bearer <key>")
            return OPEN
        forced = {"workspace_id": key.workspace_id, "virtual_key_id": key.key_id}
        if key.department_id:
            forced["department_id"] = key.department_id
        return Attribution(forced=forced, defaults={"agent_id": key.agent_id} if key.agent_id else {})
