"""`alephant-otel maintain`: retention on both backends; on a DuckLake also adoption, removal of
duplicate span copies, and DuckLake's own compaction and clean-up.

Streaming writes leave one small Parquet file per commit (per receiver); DuckLake merges them
(`ducklake_merge_adjacent_files`, and `ducklake_rewrite_data_files` for files with deletions),
keeps small inserts in the catalog until flushed (`ducklake_flush_inlined_data`), and deletes
nothing until old snapshots are expired (`ducklake_expire_snapshots`) and their files cleaned
up (`ducklake_cleanup_old_files`). Deletes on a lake make receivers' concurrent inserts retry
(see lake.py), so run this every few hours, not every few seconds.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..errors import StoreError
from . import Store, is_lock_error
from .backends import LAKE_ALIAS, parse_spec
from .database import in_transaction

_OLD = "coalesce(start_time, received_at) < ?"  # a step's age: when it started


def _cutoff(days: int) -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)


def maintain(spec: str, data_path: str | None = None, retention_days: int | None = None,
             keep_snapshots: timedelta = timedelta(hours=1)) -> list[tuple[str, object]]:
    """Run maintenance; returns (what, how many) lines for the report."""
    if parse_spec(spec).is_lake:
        with Store(spec, data_path) as store:
            return _lake(store, retention_days, keep_snapshots)
    try:
        store = Store(spec)
    except StoreError as exc:
        if is_lock_error(exc):
            raise StoreError(f"{spec} is held by a running server; stop it (SIGTERM) and run maintain again") from None
        raise
    with store:
        return _file(store.con, retention_days)


def _count(con, sql: str, params=()) -> int:
    rows = con.execute(sql, list(params)).fetchall()  # all of it: a maintenance call commits at its end
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _file(con, retention_days: int | None) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if retention_days is not None:
        cut = _cutoff(retention_days)

        def retention():
            deleted = _count(con, f"DELETE FROM _spans WHERE {_OLD}", [cut])
            con.execute("DELETE FROM _orphans o WHERE NOT EXISTS (SELECT 1 FROM _spans s"
                        " WHERE s.trace_id = o.trace_id AND s.span_id = o.span_id)")
            # a trace with no span left is new again to the writer (it skips the duplicate check)
            con.execute("DELETE FROM _traces t WHERE NOT EXISTS (SELECT 1 FROM _spans s WHERE s.trace_id = t.trace_id)")
            return deleted, _count(con, "DELETE FROM _rejected_spans WHERE received_at < ?", [cut])
        n, r = in_transaction(con, retention)
        out += [(f"steps older than {retention_days} days deleted", n), ("rejected spans deleted", r)]
    con.execute("RESET max_vacuum_tasks")  # the writer turns it off (see database.py); compact here
    con.execute("CHECKPOINT")  # freed blocks are reused by later writes (the file does not shrink)
    out.append(("checkpoint", "done"))
    return out


def data_files(con, table: str = "_span_rows") -> int:
    """Parquet files the lake's current snapshot reads for `table`."""
    return _count(con, f"SELECT count(*) FROM ducklake_list_files('{LAKE_ALIAS}', '{table}')")


def _lake(store, retention_days: int | None, keep: timedelta) -> list[tuple[str, object]]:
    from .adopt import adopt
    from .lake import retrying

    con = store.con
    out: list[tuple[str, object]] = [("span files before", data_files(con))]
    out.append(("orphans adopted", adopt(store.writer, rounds=10_000)))

    def dedupe():  # the copies the `_spans` view does not show (same order as lake.SPANS_SQL)
        return _count(con, "DELETE FROM _span_rows WHERE rowid IN (SELECT rowid FROM _span_rows QUALIFY"
                           " row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at, rowid) > 1)")
    out.append(("duplicate span copies deleted", retrying(lambda: in_transaction(con, dedupe), what="dedupe")))

    def forget_done():  # orphans re-resolved: their entries and markers go
        n = _count(con, "DELETE FROM _orphans o WHERE EXISTS (SELECT 1 FROM _orphans_done d WHERE d.trace_id ="
                        " o.trace_id AND d.span_id = o.span_id AND d.parent_span_id = o.parent_span_id)")
        con.execute("DELETE FROM _orphans_done")
        return n
    out.append(("adopted orphan entries removed", retrying(lambda: in_transaction(con, forget_done), what="orphans")))

    if retention_days is not None:
        cut = _cutoff(retention_days)

        def retention():
            n = _count(con, f"DELETE FROM _span_rows WHERE {_OLD}", [cut])
            for table in ("_span_fixes", "_orphans"):
                con.execute(f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM _span_rows s"
                            " WHERE s.trace_id = t.trace_id AND s.span_id = t.span_id)")
            r = _count(con, "DELETE FROM _rejected_spans WHERE received_at < ?", [cut])
            return n, r
        n, r = retrying(lambda: in_transaction(con, retention), what="retention")
        out += [(f"span rows older than {retention_days} days deleted", n), ("rejected spans deleted", r)]

    lake = f"'{LAKE_ALIAS}'"
    older = f"now() - INTERVAL {int(keep.total_seconds())} SECOND"
    for what, sql in [
        ("inlined rows flushed to Parquet", f"SELECT sum(rows_flushed) FROM ducklake_flush_inlined_data({lake})"),
        ("small files merged", f"SELECT sum(files_processed) FROM ducklake_merge_adjacent_files({lake})"),
        ("files rewritten without their deleted rows",
         f"SELECT sum(files_processed) FROM ducklake_rewrite_data_files({lake})"),
        ("snapshots expired", f"SELECT count(*) FROM ducklake_expire_snapshots({lake}, older_than => {older})"),
        ("unused files deleted", f"SELECT count(*) FROM ducklake_cleanup_old_files({lake}, older_than => {older})"),
    ]:
        out.append((what, retrying(lambda sql=sql: _count(con, sql), what=what)))
    out.append(("span files after", data_files(con)))
    return out
