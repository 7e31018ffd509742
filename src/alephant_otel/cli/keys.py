"""`alephant-otel keys create|list|revoke`: virtual keys (through the running server if one
holds the file, so that it starts using them at once)."""
from __future__ import annotations

import click
import pyarrow as pa

from . import main
from .options import db_option, format_option
from .render import render


def _server(db: str):
    from ..query.source import running_server

    return running_server(db)


@main.group()
def keys():
    """Virtual keys: scoped credentials that authenticate exports and attribute their spans.

    As soon as one key exists, exports without a valid key are refused.

    \b
    Example:
      alephant-otel keys create --workspace acme --agent support-bot
      alephant-otel keys list
      alephant-otel keys revoke vk_1a2b3c4d5e6f
    """


@keys.command("create")
@click.option("--workspace", required=True, help="Workspace the key's spans belong to (forced).")
@click.option("--department", help="Department the key's spans belong to (forced).")
@click.option("--agent", help="Default agent for the key's spans.")
@db_option
def create(workspace, department, agent, db):
    """Create a key and print it once (only its hash is stored).

    \b
    Example:
      alephant-otel keys create --workspace acme --department support --agent support-bot
    """
    from ..store import Store, keys as store_keys

    remote = _server(db)
    if remote is not None:
        try:
            out = remote.keys({"action": "create", "workspace": workspace, "department": department, "agent": agent})
        finally:
            remote.close()
        key_id, key = out["key_id"], out["key"]
    else:
        with Store(db) as store:
            vk, key = store_keys.create(store.con, workspace, department, agent)
            key_id = vk.key_id
    click.echo(f"key id: {key_id}")
    click.echo(f"key:    {key}")
    click.echo("Shown once. Agents send it as: OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20" + key)


@keys.command("list")
@db_option
@format_option
def list_(db, fmt):
    """List keys (ids and scopes; never the keys themselves).

    \b
    Example:
      alephant-otel keys list --format json
    """
    from ..store import Store, keys as store_keys

    remote = _server(db)
    if remote is not None:
        try:
            rows = remote.keys({"action": "list"})
        finally:
            remote.close()
    else:
        with Store(db) as store:
            rows = [{"key_id": k.key_id, "workspace_id": k.workspace_id, "department_id": k.department_id,
                     "agent_id": k.agent_id, "created_at": k.created_at, "revoked_at": k.revoked_at}
                    for k in store_keys.all_keys(store.con)]
    render(pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in
           ("key_id", "workspace_id", "department_id", "agent_id", "created_at", "revoked_at")]))
           if rows and isinstance(rows[0]["created_at"], str) else pa.Table.from_pylist(rows), fmt)


@keys.command()
@click.argument("key_id")
@db_option
def revoke(key_id, db):
    """Revoke a key: exports using it are refused from now on.

    \b
    Example:
      alephant-otel keys revoke vk_1a2b3c4d5e6f
    """
    from ..store import Store, keys as store_keys

    remote = _server(db)
    if remote is not None:
        try:
            remote.keys({"action": "revoke", "key_id": key_id})
        finally:
            remote.close()
    else:
        with Store(db) as store:
            store_keys.revoke(store.con, key_id)
    click.echo(f"revoked {key_id}")
