"""Mapped steps -> rows of `_spans`: resolved context, usage counted once, Arrow. Pure: no
DuckDB, no I/O, so it also runs in the mapping workers (receiver/workers.py).

`prepare(steps)` does in the worker what the writer would do for a request's traces if they
are new to the store: it resolves their inheritance (a span whose parent is not in the request
is an orphan, its chain starting at itself), demotes repeated usage and builds their Arrow
rows. The writer then only inserts them (and records the orphans) when the trace does turn out
to be new; otherwise it turns them back into the steps they were and writes them like any
other (see Writer._split_ready).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .. import inherit
from ..mapping.context import N_TIERS
from . import schema

TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
COSTS = ("model_cost", "computed_cost", "provided_cost", "provided_cost_source", "provided_cost_currency",
         "cost_source", "unpriced_reason", "currency", "priced_model", "priced_provider", "price_source")
EMPTY_TIERS = [{} for _ in range(N_TIERS)]
_NO_TOKENS = (None,) * len(TOKENS)
_DEMOTED = ("step_kind", "anomalies", *TOKENS, *COSTS)  # the fields a demotion changes
_ROWS = pa.struct(list(schema.ARROW_SCHEMA))


def dumps(v) -> str | None:
    return orjson.dumps(v).decode() if v else None


def arrow(steps: list[dict]) -> pa.Table:
    """Rows -> an Arrow table of _spans' columns, converted as one struct array: Arrow reads
    each row's fields by name, in C (faster than per-row tuples then a list per column). A row
    missing a column has it NULL; keys that are not columns (`tiers`) are left out."""
    return pa.Table.from_struct_array(pa.array(steps, type=_ROWS))


def counts_usage(step: dict) -> bool:
    return step.get("step_kind") == "model_call" and tuple(map(step.get, TOKENS)) != _NO_TOKENS


def _figure(v) -> str:
    """A figure as the note shows it: a Decimal without trailing zeros (the same whether it
    comes from the mapper or back from a DECIMAL column)."""
    return format(v.normalize(), "f") if isinstance(v, Decimal) else str(v)


def demotion_note(span_id: str, figures: dict) -> str:
    shown = ", ".join(f"{k}={_figure(v)}" for k, v in figures.items() if v is not None)
    return f"usage repeated by child model call {span_id}; counted there, not here ({shown or 'no figures'})"


def resolved_columns(ch, trace_id: str, own: list[dict]) -> dict:
    r = inherit.resolve(ch, trace_id, own)
    r["properties"] = dumps(r["properties"])
    return r


def resolved_once(memo: dict, ch, trace_id: str, own: list[dict]) -> dict:
    """resolved_columns, computed once per distinct (trace, chain tiers, imposed tiers) in
    `memo`, keyed by the objects' identities: spans of a trace share their tier objects (see
    inherit.chain). Sound only while every chain and step in `memo`'s keys stays alive (an id
    is reused only after its object is freed) and unchanged (tiers are never changed once
    built): use a new memo per write. The result is shared: copy it, never change it."""
    key = (trace_id, *map(id, ch), *map(id, own[N_TIERS:]))
    r = memo.get(key)
    if r is None:
        r = memo[key] = resolved_columns(ch, trace_id, own)
    return r


def demote_repeated_usage(steps: list[dict], outside=None, more_starts=(), undo: dict | None = None):
    """Demote model calls whose usage a descendant model call repeats (every model call with
    usage that has a descendant model call with usage; model calls without usage in between
    do not stop it). Rows of `steps` are changed in place (workflow_action, no tokens or cost,
    a note in `anomalies`).

    `outside(key, demoted)` gives (parent, counts usage) of a span that is not in `steps`, or
    None when it is not known; `more_starts` are keys outside `steps` that count usage. `undo`,
    when given, receives each demoted row's fields as they were. Returns ({outside key: note}
    to demote, {key of steps: counts usage after}, {key of steps: note})."""
    new = {(s["trace_id"], s["span_id"]): s for s in steps}
    counts = {k: counts_usage(s) for k, s in new.items()}
    demoted: dict[tuple[str, str], str] = {}
    notes: dict[tuple[str, str], str] = {}

    def node(k):
        s = new.get(k)
        if s is not None:
            return s["parent_span_id"], counts[k]
        return outside(k, demoted) if outside is not None else None

    # in key order: which child a note names does not depend on the order spans came in
    for t, sid in sorted([k for k, c in counts.items() if c] + list(more_starts)):
        seen = {sid}
        info = node((t, sid))
        cur = info[0] if info else None
        while cur is not None and cur not in seen:
            seen.add(cur)
            info = node((t, cur))
            if info is None:
                break
            if info[1]:
                k = (t, cur)
                if k in new:
                    row = new[k]
                    note = notes[k] = demotion_note(sid, {f: row.get(f) for f in TOKENS + ("model_cost",)})
                    if undo is not None:
                        undo[k] = {f: row.get(f) for f in _DEMOTED}
                    row.update({f: None for f in TOKENS + COSTS}, step_kind="workflow_action")
                    counts[k] = False
                    row["anomalies"] = orjson.dumps((orjson.loads(row["anomalies"]) if row.get("anomalies") else []) + [note]).decode()
                else:
                    demoted[k] = demotion_note(sid, {})
                break
            cur = info[0]
    return demoted, counts, notes


def set_context_tiers(steps: list[dict]) -> None:
    """Each step's own context tiers, as stored (read back when a later span needs them)."""
    for s in steps:
        s["context_tiers"] = dumps(s["tiers"]) if any(s["tiers"]) else None


@dataclass
class ReadyRows:
    """Rows of a request's traces, resolved and demoted as if the traces were new to the store
    (`table`: _spans' columns, received_at NULL); those traces, each once (`traces`); the rows
    whose parent is not in the request, as (trace, span, parent) (`orphans`); and the demoted
    rows' fields as they were (`undo`)."""

    table: pa.Table
    traces: list[str]
    orphans: list = field(default_factory=list)
    undo: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    # Ready rows cross from a mapping worker to the receiver (receiver/workers.py). The table
    # goes as the bytes of one Arrow IPC stream, which Arrow writes and reads in C: pickled
    # column by column, 1,000 rows took 1.4 ms to dump and 0.8 to load, as a stream 0.6 and 0.3.
    def __getstate__(self) -> dict:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as stream:
            stream.write_table(self.table)
        return {**self.__dict__, "table": sink.getvalue().to_pybytes()}  # bytes pickle faster than a Buffer

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, table=pa.ipc.open_stream(state["table"]).read_all())

    def keys(self) -> set[tuple[str, str]]:
        return set(zip(self.table.column("trace_id").to_pylist(), self.table.column("span_id").to_pylist()))

    def as_steps(self, table: pa.Table | None = None) -> list[dict]:
        """The rows (of `table`, a part of these) as the steps they were prepared from:
        undemoted, their tiers read back, to be resolved again."""
        steps = (self.table if table is None else table).to_pylist()
        for s in steps:
            s["tiers"] = orjson.loads(s["context_tiers"]) if s["context_tiers"] else EMPTY_TIERS
            if self.undo:
                s.update(self.undo.get((s["trace_id"], s["span_id"]), ()))
        return steps

    def split(self, traces) -> tuple["ReadyRows | None", list[dict]]:
        """(these rows without `traces`' (None when none is left), the rows of `traces` as
        steps, see as_steps)."""
        mask = pc.is_in(self.table.column("trace_id"), value_set=pa.array(list(traces), type=pa.string()))
        taken = self.table.filter(mask)
        if not taken.num_rows:
            return self, []
        steps = self.as_steps(taken)
        if taken.num_rows == self.table.num_rows:
            return None, steps
        gone = set(traces)
        rest = ReadyRows(self.table.filter(pc.invert(mask)), [t for t in self.traces if t not in gone],
                         [o for o in self.orphans if o[0] not in gone],
                         {k: v for k, v in self.undo.items() if k[0] not in gone})
        return rest, steps


def prepare(steps: list[dict]) -> tuple[ReadyRows | None, list[dict]]:
    """Split a request's mapped, priced steps into rows ready to insert (see the module's
    docstring) and the steps left for the writer: traces with a span sent twice or a span the
    mapper failed on."""
    by_trace: dict[str, dict[str, tuple]] = {}
    broken: set[str] = set()
    for s in steps:
        nodes = by_trace.setdefault(s["trace_id"], {})
        if s["span_id"] in nodes or s.get("mapping_error"):
            broken.add(s["trace_id"])
        nodes[s["span_id"]] = (s["parent_span_id"], s["tiers"])
    ready = [s for s in steps if s["trace_id"] not in broken] if broken else steps
    if not ready:
        return None, steps
    chains = {t: inherit.chains_for_trace(nodes, {}) for t, nodes in by_trace.items() if t not in broken}
    orphans = [(t, sid, p) for t, nodes in by_trace.items() if t not in broken
               for sid, (p, _) in nodes.items() if p is not None and p not in nodes]
    memo: dict = {}
    for s in ready:
        s.update(resolved_once(memo, chains[s["trace_id"]][s["span_id"]], s["trace_id"], s["tiers"]))
    undo: dict = {}
    demote_repeated_usage(ready, undo=undo)
    set_context_tiers(ready)
    rows = ReadyRows(arrow(ready), [t for t in by_trace if t not in broken], orphans, undo)
    return rows, [s for s in steps if s["trace_id"] in broken] if broken else []
