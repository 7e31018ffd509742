"""Virtual keys: scoped credentials that authenticate export calls and attribute their spans
to a workspace, department and agent. Only a SHA-256 of each key is stored; the key itself
is shown once, when created."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import StoreError

KEY_PREFIX = "avk_"


@dataclass
class VirtualKey:
    key_id: str
    key_hash: str
    workspace_id: str
    department_id: str | None
    agent_id: str | None
    created_at: datetime | None = None
    revoked_at: datetime | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(con, workspace: str, department: str | None = None, agent: str | None = None) -> tuple[VirtualKey, str]:
    """A new key for `workspace` (and optionally department and agent): (record, the key)."""
    if not workspace:
        raise StoreError("a virtual key needs a workspace")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    vk = VirtualKey("vk_" + secrets.token_hex(6), hash_key(key), workspace, department, agent,
                    datetime.now(timezone.utc).replace(tzinfo=None))
    con.execute("INSERT INTO _virtual_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [vk.key_id, vk.key_hash, vk.workspace_id, vk.department_id, vk.agent_id, vk.created_at])
    return vk, key


def revoke(con, key_id: str) -> None:
    # (no UPDATE ... RETURNING: a DuckLake does not support it)
    active = con.execute("SELECT count(*) FROM _virtual_keys WHERE key_id = ? AND revoked_at IS NULL",
                         [key_id]).fetchone()[0]
    if not active:
        raise StoreError(f"no active key {key_id!r}")
    con.execute("UPDATE _virtual_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                [datetime.now(timezone.utc).replace(tzinfo=None), key_id])


def all_keys(con) -> list[VirtualKey]:
    return [VirtualKey(*r) for r in con.execute(
        "SELECT key_id, key_hash, workspace_id, department_id, agent_id, created_at, revoked_at"
        " FROM _virtual_keys ORDER BY created_at").fetchall()]
