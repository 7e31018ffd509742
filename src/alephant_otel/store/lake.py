"""The DuckLake store: several receivers write one lake (PostgreSQL catalog, Parquet data).

DuckLake has no primary keys, and any UPDATE or DELETE on a table makes every transaction that
inserted into that table concurrently fail at commit. So receivers only ever append:

* `_span_rows`: the spans as each writer resolved them. A writer skips spans already committed
  (anti-join in its transaction), but two receivers can commit the same span at the same time
  (a client retrying elsewhere): the `_spans` view keeps one row per (trace_id, span_id), the
  earliest received, so nothing is counted twice; `maintain` deletes the extra copies.
* `_span_fixes`: later decisions about a stored span, by key: its re-resolved run context (when
  a missing ancestor arrived) or its demotion (a descendant model call repeats its usage).
  `_spans_live` applies them: the latest complete context fix wins; any demotion demotes.
* `_orphans` / `_orphans_done`: every span whose chain of ancestors reached a span the writer
  could not see, with that missing ancestor; entries are marked done, never deleted, by whoever
  re-resolves them (the writer that receives the ancestor, or the adoption pass, adopt.py).

The public views are the DuckDB file's (views.py) over `_spans`, stored in the lake, so any
DuckDB that attaches the lake reads the same `steps`, `runs`, `sessions`, ...
"""
from __future__ import annotations

import hashlib
import logging
import random
import threading
import time

import duckdb
import pyarrow as pa

from ..errors import StoreError
from . import schema, views
from .backends import LAKE_ALIAS, StoreSpec, attach_lake
from .database import check_version
from .rows import COSTS, TOKENS
from .writer import WriteResult, Writer, registered

log = logging.getLogger(__name__)

_CTX = schema.CONTEXT_COLUMNS
_KEYS = "trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL"
TABLES = [
    "CREATE TABLE IF NOT EXISTS _meta (key VARCHAR, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS _span_rows (\n  " + ",\n  ".join(f"{c} {t}" for c, t, _ in schema.SPAN_COLUMNS) + "\n)",
    f"CREATE TABLE IF NOT EXISTS _span_fixes ({_KEYS}, fixed_at TIMESTAMP, complete BOOLEAN, demotion VARCHAR, "
    + ", ".join(f"{c} VARCHAR" for c in _CTX) + ")",
    f"CREATE TABLE IF NOT EXISTS _orphans ({_KEYS}, parent_span_id VARCHAR, recorded_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS _orphans_done ({_KEYS}, parent_span_id VARCHAR, done_at TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS _virtual_keys (key_id VARCHAR NOT NULL, key_hash VARCHAR NOT NULL,"
    " workspace_id VARCHAR NOT NULL, department_id VARCHAR, agent_id VARCHAR, created_at TIMESTAMP, revoked_at TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS _rejected_spans (received_at TIMESTAMP, trace_id VARCHAR, span_id VARCHAR,"
    " reason VARCHAR, span BLOB)",
]

_DEMOTED = [*TOKENS, *COSTS]
# the spans with their fixes applied (one scan of _span_fixes): the latest complete context fix
# wins, else the latest; any demotion demotes. `_rowid` (DuckLake's stable row id) breaks ties.
SPANS_LIVE_SQL = (
    "WITH fx AS (SELECT trace_id, span_id, arg_max(struct_pack(" + ", ".join(f"{c} := {c}" for c in _CTX) + "),"
    " [CAST(complete AS INTEGER), epoch_us(fixed_at)]) FILTER (WHERE demotion IS NULL) AS f,"
    " list(DISTINCT demotion ORDER BY demotion) FILTER (WHERE demotion IS NOT NULL) AS notes"
    " FROM _span_fixes GROUP BY ALL)\n"
    "SELECT r.* REPLACE (" + ", ".join(
        [f"CASE WHEN x.f IS NULL THEN r.{c} ELSE x.f.{c} END AS {c}" for c in _CTX]
        + ["CASE WHEN x.notes IS NULL THEN r.step_kind ELSE 'workflow_action' END AS step_kind"]
        + [f"CASE WHEN x.notes IS NULL THEN r.{c} END AS {c}" for c in _DEMOTED]
        + ["CASE WHEN x.notes IS NULL THEN r.anomalies ELSE to_json(list_concat("
           "coalesce(CAST(r.anomalies AS JSON)::VARCHAR[], []), x.notes))::VARCHAR END AS anomalies"])
    + "), r.rowid AS _rowid\nFROM _span_rows r LEFT JOIN fx x ON r.trace_id = x.trace_id AND r.span_id = x.span_id")
# one row per span: the earliest received copy (then the lowest row id). An anti-join on three
# columns: cheaper than a window over whole rows, and filters on keys still reach the scan.
SPANS_SQL = ("SELECT l.* EXCLUDE (_rowid) FROM _spans_live l WHERE NOT EXISTS (SELECT 1 FROM _span_rows d"
             " WHERE d.trace_id = l.trace_id AND d.span_id = l.span_id AND (d.received_at < l.received_at"
             " OR (d.received_at = l.received_at AND d.rowid < l._rowid)))")
ORPHANS_PENDING_SQL = ("SELECT o.trace_id, o.span_id, o.parent_span_id FROM _orphans o WHERE NOT EXISTS ("
                       "SELECT 1 FROM _orphans_done d WHERE d.trace_id = o.trace_id AND d.span_id = o.span_id"
                       " AND d.parent_span_id = o.parent_span_id)")
INTERNAL_VIEWS = [("_spans_live", SPANS_LIVE_SQL), ("_spans", SPANS_SQL), ("_orphans_pending", ORPHANS_PENDING_SQL)]


def view_statements() -> list[str]:
    """The lake's views: internal ones, then the public views with their descriptions
    (DuckLake keeps a comment per view; column comments on views it does not support)."""
    out = [f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in INTERNAL_VIEWS]
    for stmt in views.statements():
        if not stmt.startswith("COMMENT ON COLUMN"):
            out.append(stmt)
    return out


def _views_version() -> str:
    return hashlib.sha256("\n".join(TABLES + view_statements()).encode()).hexdigest()[:16]


def is_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("conflict" in text or "another transaction" in text)


def retrying(fn, attempts: int = 8, what: str = "lake transaction"):
    """Run `fn()` (one transaction), again after a conflict with another writer (bounded,
    with jittered backoff). DuckLake itself retries plain appends; this covers the rest."""
    for attempt in range(attempts):
        try:
            return fn()
        except duckdb.Error as exc:
            if not is_conflict(exc) or attempt == attempts - 1:
                raise
            log.info("%s conflicted with another writer (attempt %d); retrying", what, attempt + 1)
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # a failed COMMIT has already ended the transaction


def _meta(con) -> dict[str, str]:
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = '_meta'",
                      [LAKE_ALIAS]).fetchone()[0]
    return dict(con.execute("SELECT key, value FROM _meta").fetchall()) if has else {}


def _version(meta: dict) -> int | None:
    return int(meta["schema_version"]) if "schema_version" in meta else None


def _setup(con) -> None:
    """Create or upgrade the lake's tables and views (once: every receiver checks first)."""
    meta = _meta(con)
    if _version(meta) == schema.SCHEMA_VERSION and meta.get("views_version") == _views_version():
        return
    con.execute("BEGIN")
    try:
        for stmt in TABLES:
            con.execute(stmt)
        for stmt in view_statements():
            con.execute(stmt)
        con.execute("DELETE FROM _meta WHERE key IN ('schema_version', 'views_version')")
        con.execute("INSERT INTO _meta VALUES ('schema_version', ?), ('views_version', ?)",
                    [str(schema.SCHEMA_VERSION), _views_version()])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def open_for_writing(spec: StoreSpec, data_path: str | None = None):
    """Attach the lake for writing (creating its tables and views the first time)."""
    con = duckdb.connect()
    try:
        attach_lake(con, spec, data_path)
        check_version(_version(_meta(con)), spec.display)
        retrying(lambda: _setup(con), what="creating the lake's tables")
    except BaseException:
        con.close()
        raise
    return con


def open_for_reading(spec: StoreSpec):
    """Attach the lake read-only (any number of readers, while receivers write)."""
    con = duckdb.connect()
    try:
        attach_lake(con, spec, read_only=True)
        version = _version(_meta(con))
        check_version(version, spec.display)
        if version is None:
            raise StoreError(f"{spec.display} is not an alephant-otel store yet "
                             f"(start `alephant-otel serve --store {spec.display} --data-path DIR` to create it)")
    except BaseException:
        con.close()
        raise
    return con


def _arrow(rows: list[dict], fields: list[tuple[str, pa.DataType]]) -> pa.Table:
    return pa.table({name: pa.array([r.get(name) for r in rows], type=t) for name, t in fields})


_S, _T, _B = pa.string(), pa.timestamp("us"), pa.bool_()
_FIX_FIELDS = [("trace_id", _S), ("span_id", _S), ("fixed_at", _T), ("complete", _B), ("demotion", _S)] + [
    (c, _S) for c in _CTX]
_ORPHAN_FIELDS = [("trace_id", _S), ("span_id", _S), ("parent_span_id", _S), ("at", _T)]


class LakeWriter(Writer):
    """The Writer's decisions (inheritance, usage counted once), stored append-only."""

    read_relation = "_spans_live"
    rows_relation = "_span_rows"
    orphans_relation = "_orphans_pending"
    track_incomplete = True

    def write(self, steps: list[dict], rejected=(), ready=()) -> WriteResult:
        # no `_traces` says which traces are new here: ready rows are written as steps
        steps = [*steps, *(s for r in ready if r is not None for s in r.as_steps())]
        uniq: dict[tuple[str, str], dict] = {}
        for s in steps:
            uniq.setdefault((s["trace_id"], s["span_id"]), s)
        # each attempt works on copies: a retry starts again from what the lake holds then
        return retrying(lambda: self._write([dict(s) for s in uniq.values()], rejected, []), what="write")

    def _open_traces(self, traces: set[str], now: int) -> int:
        # no `_traces` here: a span is looked for among all of `_span_rows` (see _stored_keys)
        self._new, self._since = frozenset(), None
        return now

    def _append(self, table: str, tbl: pa.Table, columns: str = "*") -> None:
        with registered(self.con, "_append", tbl):
            self.con.execute(f"INSERT INTO {table} SELECT {columns} FROM _append")

    def _now(self):
        return int(time.time() * 1_000_000)

    def _update_context(self, updates: list[dict]) -> None:
        now = self._now()
        rows = [{**u, "fixed_at": now, "complete": u.get("_missing") is None} for u in updates]
        self._append("_span_fixes", _arrow(rows, _FIX_FIELDS))

    def _demote_stored(self, demoted: dict) -> None:
        now = self._now()
        rows = [{"trace_id": t, "span_id": s, "fixed_at": now, "demotion": note} for (t, s), note in demoted.items()]
        self._append("_span_fixes", _arrow(rows, _FIX_FIELDS))

    def _record_orphans(self, rows: list[tuple[str, str, str]]) -> None:
        now = self._now()
        self._append("_orphans", _arrow([dict(zip(("trace_id", "span_id", "parent_span_id"), r), at=now)
                                         for r in rows], _ORPHAN_FIELDS))

    def _drop_orphans(self, adopted: list[tuple[str, str, str]]) -> None:
        now = self._now()
        self._append("_orphans_done", _arrow([dict(zip(("trace_id", "span_id", "parent_span_id"), r), at=now)
                                              for r in adopted], _ORPHAN_FIELDS))

    def _record_rejected(self, rejected, now: int) -> None:
        self._append("_rejected_spans", pa.table({
            "received_at": pa.array([now] * len(rejected), type=_T),
            "trace_id": pa.array([r.trace_id for r in rejected], type=_S),
            "span_id": pa.array([r.span_id for r in rejected], type=_S),
            "reason": pa.array([r.reason for r in rejected], type=_S),
            "span": pa.array([r.span_bytes for r in rejected], type=pa.binary())}))


class Background(threading.Thread):
    """Every `interval` seconds: adopt orphans whose missing ancestor another receiver stored,
    then `on_tick(con)` (the server reloads virtual keys). Its own connection to the lake."""

    def __init__(self, con, interval: float, on_tick=None):
        super().__init__(name="alephant-lake-adopt", daemon=True)
        self.con, self.interval, self.on_tick = con, interval, on_tick
        self.stopping = threading.Event()
        self.adopted = 0

    def run(self) -> None:
        from .adopt import adopt

        writer = LakeWriter(self.con, cache_size=0)
        while not self.stopping.wait(self.interval):
            try:
                self.adopted += adopt(writer)
                if self.on_tick is not None:
                    self.on_tick(self.con)
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("lake adoption pass failed")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        self.con.close()
