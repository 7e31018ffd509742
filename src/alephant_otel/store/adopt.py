"""Adoption on a DuckLake: re-resolve spans whose missing ancestor has arrived since.

A receiver resolves inheritance from what it can see. When a parent and its child commit at the
same moment on two receivers, neither sees the other: the child is recorded in `_orphans` with
the ancestor it missed (every span whose chain reached a missing span is, see lake.py). This
pass, run every few seconds by each lake receiver and by `alephant-otel maintain`, takes the
pending orphans whose missing ancestor is now stored, recomputes their chains from the whole
stored trace, appends the new context (`_span_fixes`), marks the entries done and records again
those whose chain reaches another missing span. In the same transaction it applies "usage
counted once" to the whole trace: a model call whose descendant model call repeats its usage
(committed on another receiver) is demoted. Everything is appended, so the pass never makes a
receiver's insert fail; two passes on the same trace only write the same facts twice.
"""
from __future__ import annotations

import pyarrow as pa

from .. import inherit
from .database import in_transaction
from .lake import LakeWriter, retrying
from .rows import resolved_columns
from .writer import missing_ancestor, registered

_READY = ("SELECT DISTINCT o.trace_id FROM _orphans_pending o SEMI JOIN _span_rows s"
          " ON s.trace_id = o.trace_id AND s.span_id = o.parent_span_id LIMIT ?")


def adopt(writer: LakeWriter, max_traces: int = 500, rounds: int = 20) -> int:
    """Adopt what is ready, up to `rounds` transactions of `max_traces` traces; returns how
    many spans were re-resolved."""
    total = 0
    for _ in range(rounds):
        done, more = retrying(lambda: _adopt_once(writer, max_traces), what="adoption")
        total += done
        if not more:
            break
    return total


def _adopt_once(writer: LakeWriter, max_traces: int) -> tuple[int, bool]:
    return in_transaction(writer.con, lambda: _adopt(writer, max_traces))


def _adopt(writer: LakeWriter, max_traces: int) -> tuple[int, bool]:
    con = writer.con
    traces = [t for (t,) in con.execute(_READY, [max_traces]).fetchall()]
    if not traces:
        return 0, False
    with registered(con, "_adopt_traces", pa.table({"trace_id": pa.array(traces, type=pa.string())})):
        entries = con.execute(
            "SELECT DISTINCT o.trace_id, o.span_id, o.parent_span_id FROM _orphans_pending o"
            " SEMI JOIN _adopt_traces t ON o.trace_id = t.trace_id").fetchall()
    stored = writer._load_traces(set(traces))
    fixes: dict[tuple[str, str], dict] = {}
    handled, again = [], []
    for t, sid, parent in entries:
        nodes_full = stored.get(t, {})
        if parent not in nodes_full:
            continue  # its missing ancestor is still missing
        handled.append((t, sid, parent))
        if sid not in nodes_full or (t, sid) in fixes:
            continue  # (the span itself is gone: retention)
        nodes = {s: (p, tiers) for s, (p, tiers, _) in nodes_full.items()}
        chains = inherit.chains_for_trace(nodes, {})
        miss = missing_ancestor(sid, nodes, {})
        fixes[(t, sid)] = {"trace_id": t, "span_id": sid, "_missing": miss,
                           **resolved_columns(chains[sid], t, nodes[sid][1])}
        if miss is not None:
            again.append((t, sid, miss))
    demoted, _, _ = writer._demote_repeated_usage([], stored)
    if fixes:
        writer._update_context(list(fixes.values()))
    if demoted:
        writer._demote_stored(demoted)
    if again:
        writer._record_orphans(again)
    if handled:
        writer._drop_orphans(handled)
    return len(fixes), len(traces) == max_traces
