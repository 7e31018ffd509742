"""Opening the DuckDB file: schema creation, version check, migrations, views."""
from __future__ import annotations

from pathlib import Path

import duckdb

from ..config import DEFAULT_CHECKPOINT_MB
from ..errors import SchemaTooNew, StoreError
from . import schema, views
from .backends import parse_spec



def _version(con) -> int | None:
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_meta' AND database_name = current_database()"
    ).fetchone()[0]
    if not has_meta:
        return None
    row = con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def check_version(version: int | None, path: str) -> None:
    if version is not None and version > schema.SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}, newer than this alephant-otel understands "
            f"({schema.SCHEMA_VERSION}); upgrade alephant-otel to read it")


def open_for_writing(path: str | Path, data_path: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating or migrating) the store for writing: a DuckDB file (one writer per file)
    or a DuckLake (`ducklake:postgres://...`, see lake.py)."""
    spec = parse_spec(str(path))
    if spec.is_lake:
        from . import lake
        return lake.open_for_writing(spec, data_path)
    path = spec.path
    try:
        con = duckdb.connect(path)
    except duckdb.IOException as exc:
        raise StoreError(f"cannot open {path} for writing: {exc}") from None
    try:
        # DuckDB checkpoints (merges the WAL into the file) once the WAL passes this size, inside
        # the commit that crosses it: every export of that commit waits for the checkpoint. At
        # 64MB that took 0.4-0.5 s and set the p99 even at half load; at 16MB ~0.17 s, for ~17%
        # more writer CPU offline (the last row group is recompressed more often), which was
        # within the noise end to end (README, Performance). DuckDB 1.5.5 cannot let inserts
        # continue while a checkpoint writes the table, even from another connection.
        # (`serve --checkpoint-mb` sets another: Store.set_checkpoint_mb)
        con.execute(f"SET checkpoint_threshold = '{DEFAULT_CHECKPOINT_MB}MB'")
        # _spans has no index (see schema.py), which lets DuckDB's checkpoints "vacuum" it:
        # merge the row groups each commit appended. On the bench's traffic that stalled a
        # checkpoint for 2-3 s, took ~450 MB more memory, and left ~85 bytes per step of freed
        # blocks in the file. Checkpoints append to the last row group anyway; `maintain`
        # vacuums (after deleting old steps).
        con.execute("SET max_vacuum_tasks = 0")
        version = _version(con)
        check_version(version, path)
        con.execute("BEGIN")
        if version is None:
            for stmt in schema.DDL:
                con.execute(stmt)
        else:
            for v in range(version, schema.SCHEMA_VERSION):
                for stmt in schema.MIGRATIONS[v]:
                    con.execute(stmt)
        con.execute("INSERT OR REPLACE INTO _meta VALUES ('schema_version', ?)", [str(schema.SCHEMA_VERSION)])
        for stmt in views.statements():
            con.execute(stmt)
        con.execute("COMMIT")
    except BaseException:
        con.close()
        raise
    return con


def open_for_reading(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open the store read-only (a DuckDB file, or a DuckLake attached read-only); raises
    StoreError with advice when that is not possible."""
    spec = parse_spec(str(path))
    if spec.is_lake:
        from . import lake
        return lake.open_for_reading(spec)
    path = spec.path
    if not Path(path).exists():
        raise StoreError(f"no store at {path} (start `alephant-otel serve --db {path}` to create one)")
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.IOException as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    version = _version(con)
    try:
        check_version(version, path)
        if version is None:
            raise StoreError(f"{path} is not an alephant-otel store")
        if version < schema.SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}; run `alephant-otel migrate --db {path}` "
                f"to upgrade it to {schema.SCHEMA_VERSION}")
    except StoreError:
        con.close()
        raise
    return con


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def in_transaction(con, fn):
    """`fn()` in one transaction on `con`: committed when it returns, rolled back if it raises
    (a failed COMMIT has already ended it)."""
    con.execute("BEGIN")
    try:
        result = fn()
        con.execute("COMMIT")
        return result
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
