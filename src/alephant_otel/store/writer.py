"""The single writer: inserts mapped steps idempotently, resolves inheritance, and makes sure
usage is counted once.

Inheritance must hold whatever the arrival order: children before parents, in other export
requests, or after a restart. Each span stores its own context tiers (`context_tiers`); its
resolved columns come from its chain (see inherit.py). A span whose parent has not arrived is
recorded in `_orphans`; when the parent arrives, the orphan's stored subtree is re-resolved and
updated in the same transaction.

Usage counted once: a model call with usage under another model call with usage (a framework's
LLM span wrapping the provider client's, e.g. LangChain over OpenAI) means the ancestor repeats
it. Only the innermost count: every model call with usage that has a descendant model call with
usage (model calls without usage in between do not stop it) is demoted to a workflow_action
without tokens or cost, with one note in its `anomalies`, whatever the arrival order, retries and
what the cache remembers (a walk up that leaves what the batch and the cache know reads the trace).

Stored once: a span is stored at most once per (trace_id, span_id), without an index on _spans
(see schema.py). Each write records its traces in `_traces`; a trace new there has nothing
stored, so its spans are inserted unchecked (the common case: traffic is mostly new traces).
The spans of a trace stored before are checked against that trace's stored spans, read from
its `first_received` on: `received_at` never decreases (the writer's clock never goes below the
latest first_received), so DuckDB skips the row groups received before the trace began.

Ready rows: the mapping workers resolve and demote each request's traces as if new to the
store (rows.prepare). A write inserts those rows as they are when the trace is new to the file
and in no other request of the write (`_split_ready`, `_insert_ready`); the others go back to
the steps they were and take the path above (`_write_steps`), so the rows do not depend on it.
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa

from .. import inherit
from . import rows, schema

_HAS_USAGE_SQL = " OR ".join(f"{t} IS NOT NULL" for t in rows.TOKENS)
_UPDATE_SCHEMA = pa.schema([("trace_id", pa.string()), ("span_id", pa.string())]
                           + [(c, pa.string()) for c in schema.CONTEXT_COLUMNS])
_INSERT_COLUMNS = ", ".join(schema.SPAN_COLUMN_NAMES)
_SET_CONTEXT = ", ".join(f"{c} = u.{c}" for c in schema.CONTEXT_COLUMNS)
_CONTEXT_CHANGES = " OR ".join(f"_spans.{c} IS DISTINCT FROM u.{c}" for c in schema.CONTEXT_COLUMNS)
# ready rows come without received_at (see rows.prepare): the write's time is put in the SQL
_READY_COLUMNS = ", ".join("{received_at}" if c == "received_at" else c for c in schema.SPAN_COLUMN_NAMES)


def timestamp_sql(us: int) -> str:
    """A time (microseconds since the epoch) as a SQL literal. The writer's statements carry
    their times in the text, not as parameters: with any parameter, duckdb 1.5.5 tries to
    import pandas (twice per statement; ~0.1 ms each when it is not installed, under the GIL)."""
    return f"make_timestamp({int(us)})"


@contextmanager
def registered(con, name: str, table: pa.Table):
    """`table` readable by `con`'s SQL as `name` inside the block, for one statement that reads
    it once: statements take a batch's rows as one table (a statement per row cost ~3 ms each).
    It goes as an Arrow C stream: DuckDB reads a pyarrow Table through a pyarrow dataset, ~1.4
    ms a statement before any row (a stream ~0.6) and more per row; the writer's own CPU fell
    ~11% per step. A stream is read once: a second read raises DuckDB's InvalidInputException
    ("already been consumed"), so a second statement needs a block of its own."""
    con.register(name, table.__arrow_c_stream__())
    try:
        yield
    finally:
        con.unregister(name)


def _strings(**columns: list) -> pa.Table:
    return pa.table({c: pa.array(v, type=pa.string()) for c, v in columns.items()})


def _keys(pairs) -> pa.Table:
    """(trace_id, span_id) pairs as a table of those two columns."""
    pairs = list(pairs)
    return _strings(trace_id=[t for t, _ in pairs], span_id=[s for _, s in pairs])


@dataclass
class WriteResult:
    inserted: int
    duplicates: int
    reresolved: int
    keys: set = field(default_factory=set, repr=False)  # keys inserted from steps
    ready: list = field(default_factory=list, repr=False)  # ready rows inserted (all of them)

    @property
    def inserted_keys(self) -> set[tuple[str, str]]:
        """Every (trace_id, span_id) inserted (built on demand: the usual caller needs only
        counts)."""
        return self.keys.union(*(r.keys() for r in self.ready))


@dataclass
class _Written:
    """What writing the steps of a write decided (see Writer._write_steps)."""

    inserted: set = field(default_factory=set)
    reresolved: int = 0
    demoted: dict = field(default_factory=dict)
    new_orphans: list = field(default_factory=list)
    adopted: list = field(default_factory=list)
    entries: dict = field(default_factory=dict)


def missing_ancestor(sid: str, nodes: dict, complete: dict) -> str | None:
    """The first ancestor of `sid` that is neither in `nodes` (span_id -> (parent, ...)) nor in
    `complete` (spans whose chains are known complete); None when the chain reaches a root."""
    seen = set()
    cur = sid
    while True:
        parent = nodes[cur][0]
        if parent is None or parent in complete:
            return None
        if parent not in nodes:
            return parent
        if parent in seen:  # a cycle of parents: nothing above it will ever arrive
            return None
        seen.add(parent)
        cur = parent


class Writer:
    """Owns the write connection. Not thread-safe: call from one thread (see receiver/pipeline).

    The SQL that persists a batch is in small methods (`_insert`, `_update_context`,
    `_demote_stored`, `_record_orphans`, `_drop_orphans`, `_record_rejected`) so that the DuckLake
    writer (lake.py) can store the same decisions append-only."""

    read_relation = "_spans"  # where stored spans are read from (with their current state)
    rows_relation = "_spans"  # where span rows are inserted, and looked for when retried
    orphans_relation = "_orphans"  # the orphans still waiting for their parent
    # False: only spans whose parent is missing are orphans (one writer resolves their subtree).
    # True: every span whose chain of ancestors reaches a missing span is recorded (with that
    # missing ancestor), and only complete chains are cached (several writers, see lake.py).
    track_incomplete = False

    # Spans whose chains are remembered, so a child arriving after its parent was written needs
    # no read. Spans end (and are exported) before their parents, so most children come first
    # and are adopted instead; 50k entries (~6 s of traffic at full load) keep the receiver's
    # memory ~200 MB lower than 200k did, with no measurable cost in bench/run.py.
    def __init__(self, con, cache_size: int = 50_000):
        self.con = con
        # (trace_id, span_id) -> (chain, parent_span_id, counts usage) of recently written spans
        self.cache: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self.cache_size = cache_size
        # Orphans waiting in the file, as this (only) writer counts them: never fewer than there
        # are, so none is missed; None = not known (count again). Zero skips the orphan join,
        # ~5 ms per commit. Several writers (track_incomplete) always look.
        self._orphans_pending: int | None = None
        # trace_id -> first_received (us) of traces recently written (as many as `cache_size`):
        # spares reading it from _traces; whether a trace is stored is always asked of the file
        self.traces: OrderedDict[str, int] = OrderedDict()
        self._floor: int | None = None  # the latest first_received stored (None: read it)
        # during a write (see _open_traces): the batch's traces with nothing stored before it,
        # and {stored trace of the batch: its first_received}; None: not known (read it all)
        self._new: set[str] | frozenset = frozenset()
        self._since: dict[str, int] | None = None

    # -- traces --------------------------------------------------------------------------------
    def _open_traces(self, traces: set[str], now: int) -> int:
        """Record the batch's traces in `_traces` (in the write's transaction) and set `_new`
        and `_since` for them. Returns the time to stamp the batch with: `now`, raised to the
        latest first_received stored, so that received_at never decreases (a clock set back,
        a restart) and every span of a trace is received at or after its first_received."""
        if self._floor is None:
            self._floor = self.con.execute("SELECT epoch_us(max(first_received)) FROM _traces").fetchone()[0] or 0
        now = max(now, self._floor)
        # every trace goes through _traces, remembered or not: the file, not this writer's
        # memory, says which traces have spans (`maintain` may have deleted some meanwhile)
        batch = _strings(trace_id=list(traces))
        with registered(self.con, "_batch_traces", batch):
            new = {t for (t,) in self.con.execute(
                f"INSERT OR IGNORE INTO _traces SELECT trace_id, {timestamp_sql(now)} FROM _batch_traces"
                " RETURNING trace_id").fetchall()}
        if any(t in self.traces for t in new):
            # a trace remembered but new to the file was deleted (`maintain`) and comes back:
            # what the span cache holds of its spans is stale (spans not sent again keep
            # their entries; ready rows replace none). Rare; the cache is an optimisation.
            self.cache.clear()
        since = {t: self.traces[t] for t in traces if t not in new and t in self.traces}
        if len(new) + len(since) < len(traces):
            with registered(self.con, "_batch_traces", batch):
                since.update((t, first) for t, first in self.con.execute(
                    "SELECT t.trace_id, epoch_us(t.first_received) FROM _traces t"
                    " SEMI JOIN _batch_traces b ON t.trace_id = b.trace_id").fetchall()
                    if t not in new and t not in since)
        self._new, self._since = new, since
        return now

    def _close_traces(self, now: int, committed: bool) -> None:
        """After the write: remember its traces if it committed; forget the write's state."""
        if committed:
            self._floor = now
            remembered = self.traces
            for t in self._new:
                remembered[t] = now
            for t, first in (self._since or {}).items():
                remembered[t] = first
                remembered.move_to_end(t)
            while len(remembered) > self.cache_size:
                remembered.popitem(last=False)
        self._new, self._since = frozenset(), None

    def _bound(self, traces) -> int | None:
        """The earliest first_received of `traces` (us): their stored spans were all received
        since. None when not known (a write reads all of the trace)."""
        if self._since is None:
            return None
        return min((self._since.get(t, 0) for t in traces), default=0)

    def _since_sql(self, traces, column: str) -> str:
        """` AND column >= bound` (or '') for reads of `traces`' stored spans."""
        bound = self._bound(traces)
        return "" if bound is None else f" AND {column} >= {timestamp_sql(bound)}"

    # -- inheritance ---------------------------------------------------------------------------
    def _load_traces(self, traces: set[str]) -> dict[str, dict[str, tuple]]:
        """trace -> {span: (parent, tiers, counts usage)}; a trace with no stored span maps to {}."""
        out: dict[str, dict[str, tuple]] = {t: {} for t in traces}
        traces = [t for t in traces if t not in self._new]  # nothing stored before this write
        if not traces:
            return out
        since = self._since_sql(traces, "s.received_at")
        with registered(self.con, "_load_traces", _strings(trace_id=traces)):
            found = self.con.execute(
                "SELECT s.trace_id, s.span_id, s.parent_span_id, s.context_tiers,"
                f" s.step_kind = 'model_call' AND ({_HAS_USAGE_SQL}) FROM {self.read_relation} s"
                f" SEMI JOIN _load_traces t ON s.trace_id = t.trace_id WHERE true{since}").fetchall()
        # spans of a trace usually carry the same context (the same headers): one object for
        # each distinct text, so that their chains share it and resolve once (rows.resolved_once)
        parsed: dict[str, list] = {}
        for t, s, p, tiers, usage in found:
            if tiers:
                own = parsed.get(tiers)
                if own is None:
                    own = parsed[tiers] = orjson.loads(tiers)
            else:
                own = rows.EMPTY_TIERS
            out[t][s] = (p, own, bool(usage))
        return out

    def _may_have_orphans(self) -> bool:
        if self.track_incomplete:
            return True
        if self._orphans_pending is None:
            self._orphans_pending = self.con.execute(f"SELECT count(*) FROM {self.orphans_relation}").fetchone()[0]
        return self._orphans_pending > 0

    def _adopted_orphans(self, keys: pa.Table) -> list[tuple[str, str, str]]:
        """Stored orphans whose (missing) parent is among the incoming spans."""
        with registered(self.con, "_incoming", keys):
            return self.con.execute(
                f"SELECT DISTINCT o.trace_id, o.span_id, o.parent_span_id FROM {self.orphans_relation} o JOIN _incoming i"
                " ON o.trace_id = i.trace_id AND o.parent_span_id = i.span_id").fetchall()

    def _resolve(self, steps: list[dict], keys: pa.Table):
        """Fill resolved context columns of `steps` and demote repeated usage; return (context
        updates of stored rows, demotions of stored rows, {orphan key among steps: missing
        ancestor}, adopted orphans, cache entries, {key among steps: its demotion note}). With
        `track_incomplete`, each update carries `_missing` (its missing ancestor, None when its
        chain is now complete)."""
        by_trace: dict[str, dict[str, tuple]] = {}
        for s in steps:
            by_trace.setdefault(s["trace_id"], {})[s["span_id"]] = (s["parent_span_id"], s["tiers"])
        adopted = self._adopted_orphans(keys) if self._may_have_orphans() else []
        need = {t for t, _, _ in adopted}
        for t, nodes in by_trace.items():
            if t in need:
                continue
            for parent, _ in nodes.values():
                if parent is not None and parent not in nodes and (t, parent) not in self.cache:
                    need.add(t)
                    break
        stored = self._load_traces(need)
        resolved: dict[tuple, dict] = {}  # see rows.resolved_once (chains and steps outlive it)
        chains: dict[tuple[str, str], list] = {}
        updates: list[dict] = []
        orphans: dict[tuple[str, str], str] = {}
        incomplete: set[tuple[str, str]] = set()
        for t, new_nodes in by_trace.items():
            if t in need:
                old = {sid: (p, tiers) for sid, (p, tiers, _) in stored.get(t, {}).items()}
                nodes = {**old, **new_nodes}
                tchains = inherit.chains_for_trace(nodes, {})
                known: dict = {}
                for sid, (parent, _) in new_nodes.items():
                    if parent is not None and parent not in nodes:
                        orphans[(t, sid)] = parent
                # stored spans under a span of the batch are re-resolved: those not in the batch,
                # and those retried in it (the retried copy is not inserted) under a span that is
                # new (their stored row was resolved without it, e.g. an orphan and its parent).
                # In the batch's order, then the trace's: no set order reaches what is written.
                fresh = {sid for sid in new_nodes if sid not in old}
                candidates = ([(sid, fresh) for sid in new_nodes if sid in old]
                              + [(sid, new_nodes) for sid in old if sid not in new_nodes])
                for sid, above in candidates:  # re-resolved when it has an ancestor in `above`
                    if self._has_ancestor_in(sid, nodes, above):
                        row = {"trace_id": t, "span_id": sid, **rows.resolved_once(resolved, tchains[sid], t, nodes[sid][1])}
                        if self.track_incomplete:
                            row["_missing"] = missing_ancestor(sid, nodes, known)
                            if row["_missing"] is not None:
                                incomplete.add((t, sid))
                        updates.append(row)
                        chains[(t, sid)] = tchains[sid]
            else:
                nodes = new_nodes
                known = {p: self.cache[(t, p)][0] for p, _ in new_nodes.values()
                         if p is not None and p not in new_nodes}
                tchains = inherit.chains_for_trace(new_nodes, known)
            if self.track_incomplete:  # descendants of orphans are recorded too
                for sid in new_nodes:
                    miss = missing_ancestor(sid, nodes, known)
                    if miss is not None:
                        orphans[(t, sid)] = miss
                        incomplete.add((t, sid))
            for sid in new_nodes:
                chains[(t, sid)] = tchains[sid]
        for s in steps:
            s.update(rows.resolved_once(resolved, chains[(s["trace_id"], s["span_id"])], s["trace_id"], s["tiers"]))
        demoted, usage_of, notes = self._demote_repeated_usage(steps, stored)
        entries = {}
        parent_of = {(s["trace_id"], s["span_id"]): s["parent_span_id"] for s in steps}
        for k, ch in chains.items():
            if k in incomplete:  # (only with track_incomplete) another writer may complete it
                continue
            if k in usage_of:
                entries[k] = (ch, parent_of[k], usage_of[k])
            else:  # a stored span re-resolved: keep what is known of it
                p, _, usage = stored[k[0]][k[1]]
                entries[k] = (ch, p, usage and k not in demoted)
        return updates, demoted, orphans, adopted, entries, notes

    def _demote_repeated_usage(self, steps: list[dict], stored: dict):
        """rows.demote_repeated_usage over the batch, the stored traces loaded so far (see
        _load_traces) and the cache. A walk up a trace that is not loaded, past what the batch
        and the cache know, loads it into `stored`: the cache is only an optimisation."""
        def outside(k, demoted):  # (parent, counts usage) from the loaded traces or the cache
            nodes = stored.get(k[0])
            if nodes is None:
                cached = self.cache.get(k)
                if cached is not None:
                    return cached[1], cached[2] and k not in demoted
                nodes = stored[k[0]] = self._load_traces({k[0]})[k[0]]
            loaded = nodes.get(k[1])
            if loaded is not None:
                return loaded[0], loaded[2] and k not in demoted
            return None

        starts = [(t, sid) for t, nodes in stored.items() for sid, (_, _, usage) in nodes.items() if usage]
        return rows.demote_repeated_usage(steps, outside, starts)

    @staticmethod
    def _has_ancestor_in(sid: str, nodes: dict, targets: dict) -> bool:
        seen = set()
        cur = nodes[sid][0]
        while cur is not None and cur in nodes and cur not in seen:
            if cur in targets:
                return True
            seen.add(cur)
            cur = nodes[cur][0]
        return False

    # -- writing -------------------------------------------------------------------------------
    def write(self, steps: list[dict], rejected=(), ready=()) -> WriteResult:
        """Insert mapped (and priced) steps in one transaction; duplicates are ignored.
        `ready`: rows.ReadyRows from requests (see rows.prepare), inserted as they are when
        their traces are new to the store, else written like steps."""
        uniq: dict[tuple[str, str], dict] = {}
        for s in steps:
            uniq.setdefault((s["trace_id"], s["span_id"]), s)
        return self._write(list(uniq.values()), rejected, [r for r in ready if r is not None and len(r)])

    def _write(self, steps: list[dict], rejected, ready: list) -> WriteResult:
        con = self.con
        con.execute("BEGIN")
        now = None
        try:
            traces = {s["trace_id"] for s in steps}.union(*(r.traces for r in ready))
            now = self._open_traces(traces, int(time.time() * 1_000_000))
            ready, steps = self._split_ready(ready, steps)
            done = self._write_steps(steps, now) if steps else _Written()
            orphaned = self._insert_ready(ready, now) if ready else 0
            if rejected:
                self._record_rejected(rejected, now)
            con.execute("COMMIT")
        except BaseException:
            self._orphans_pending = None
            self._close_traces(now, committed=False)
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT has already ended the transaction
            raise
        self._close_traces(now, committed=True)
        if self._orphans_pending is not None:
            self._orphans_pending += len(done.new_orphans) + orphaned - len(done.adopted)
        self._remember(done.entries, done.demoted)
        return WriteResult(len(done.inserted) + sum(map(len, ready)), len(steps) - len(done.inserted),
                           done.reresolved, done.inserted, ready)

    def _split_ready(self, ready: list, steps: list[dict]) -> tuple[list, list[dict]]:
        """(ready rows to insert as they are, steps to write). Rows of a trace that is new to
        the store (see _open_traces) and in no other part of this write are ready: nothing is
        stored of it, so its missing parents are orphans, as rows.prepare assumed. The others go
        back to steps and are resolved here: a retry, a trace continued from an earlier write or
        by another request of this write (whose orphans it may adopt)."""
        if not ready:
            return ready, steps
        seen = Counter(t for r in ready for t in r.traces)
        seen.update({s["trace_id"] for s in steps})
        fast, back = [], []
        for r in ready:
            slow = [t for t in r.traces if t not in self._new or seen[t] > 1]
            if slow:
                r, taken = r.split(slow)
                back += taken
            if r is not None:
                fast.append(r)
        if back:
            uniq: dict[tuple[str, str], dict] = {}
            for s in steps + back:
                uniq.setdefault((s["trace_id"], s["span_id"]), s)
            steps = list(uniq.values())
        return fast, steps

    def _insert_ready(self, ready: list, now: int) -> int:
        """Insert ready rows of traces new to the store and record their orphans (whose parent
        has not come); returns how many orphans were recorded."""
        tbl = pa.concat_tables([r.table for r in ready])
        with registered(self.con, "_ready", tbl):
            self.con.execute(f"INSERT INTO {self.rows_relation} ({_INSERT_COLUMNS})"
                             f" SELECT {_READY_COLUMNS.format(received_at=timestamp_sql(now))} FROM _ready")
        orphans = [o for r in ready for o in r.orphans]
        if orphans:
            self._record_orphans(orphans)
        return len(orphans)

    def _write_steps(self, steps: list[dict], now: int) -> "_Written":
        """Resolve, insert and persist the decisions for `steps` (inside the write's transaction)."""
        ids = [(s["trace_id"], s["span_id"]) for s in steps]
        updates, demoted, orphans, adopted, entries, notes = self._resolve(steps, _keys(ids))
        rows.set_context_tiers(steps)
        for s in steps:
            s["received_at"] = now
        inserted_set = self._insert(rows.arrow(steps), ids)
        if len(inserted_set) < len(steps):
            demoted = self._skip_duplicates(steps, inserted_set, demoted, notes, entries)
        if updates:
            self._update_context(updates)
        if demoted:
            self._demote_stored(demoted)
        new_orphans = [(t, s, p) for (t, s), p in orphans.items() if (t, s) in inserted_set]
        new_orphans += [(u["trace_id"], u["span_id"], u["_missing"]) for u in updates if u.get("_missing")]
        if new_orphans:
            self._record_orphans(new_orphans)
        if adopted:
            self._drop_orphans(adopted)
        return _Written(inserted_set, len(updates) + len(demoted), demoted, new_orphans, adopted, entries)

    def _skip_duplicates(self, steps: list[dict], inserted: set, demoted: dict, notes: dict, entries: dict) -> dict:
        """Steps already stored (retries) were resolved as new but not inserted: their stored
        rows are what counts. A demotion of such a step applies to its stored row, unless that
        row is demoted already; that such a step counts usage is not cached (its stored row may
        have been demoted since): it leaves the cache (None in `entries`, see _remember), which
        may remember an older chain of it. Returns the stored rows to demote."""
        for s in steps:
            k = (s["trace_id"], s["span_id"])
            if k not in inserted and entries.get(k) is not None and entries[k][2]:
                entries[k] = None
        lost = [k for k in notes if k not in inserted]
        if not lost:
            return demoted
        since = self._since_sql({t for t, _ in lost}, "s.received_at")
        with registered(self.con, "_lost", _keys(lost)):
            counting = self.con.execute(
                f"SELECT DISTINCT s.trace_id, s.span_id FROM {self.read_relation} s SEMI JOIN _lost k"
                f" ON s.trace_id = k.trace_id AND s.span_id = k.span_id"
                f" WHERE s.step_kind = 'model_call' AND ({_HAS_USAGE_SQL}){since}").fetchall()
        return {**demoted, **{k: notes[k] for k in counting}}

    def _insert(self, tbl: pa.Table, ids: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Insert the rows (keys `ids`, in order) whose key is not stored yet; return the keys
        inserted. Only spans of traces stored before are looked for (see the module's docstring)."""
        stored = self._stored_keys([k for k in ids if k[0] not in self._new])
        if stored:
            tbl = tbl.filter(pa.array([k not in stored for k in ids]))
        if tbl.num_rows:
            with registered(self.con, "_batch", tbl):
                self.con.execute(f"INSERT INTO {self.rows_relation} ({_INSERT_COLUMNS}) SELECT {_INSERT_COLUMNS} FROM _batch")
        return set(ids) - stored

    def _stored_keys(self, ids: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of `ids` are stored in `rows_relation`."""
        if not ids:
            return set()
        since = self._since_sql({t for t, _ in ids}, "s.received_at")
        with registered(self.con, "_maybe", _keys(ids)):
            return set(self.con.execute(
                f"SELECT s.trace_id, s.span_id FROM {self.rows_relation} s SEMI JOIN _maybe k"
                f" ON s.trace_id = k.trace_id AND s.span_id = k.span_id WHERE true{since}").fetchall())

    def _record_orphans(self, triples: list[tuple[str, str, str]]) -> None:
        """Record (trace, span, missing parent) of spans whose parent has not come."""
        orphans = _strings(trace_id=[t for t, _, _ in triples], span_id=[s for _, s, _ in triples],
                           parent_span_id=[p for _, _, p in triples])
        with registered(self.con, "_new_orphans", orphans):
            self.con.execute("INSERT OR IGNORE INTO _orphans SELECT DISTINCT ON (trace_id, span_id) * FROM _new_orphans")

    def _drop_orphans(self, adopted: list[tuple[str, str, str]]) -> None:
        with registered(self.con, "_adopted", _keys((t, s) for t, s, _ in adopted)):
            self.con.execute("DELETE FROM _orphans o USING _adopted a"
                             " WHERE o.trace_id = a.trace_id AND o.span_id = a.span_id")

    def _record_rejected(self, rejected, now: int) -> None:
        self.con.executemany("INSERT INTO _rejected_spans VALUES (make_timestamp(?), ?, ?, ?, ?)",
                             [(now, r.trace_id, r.span_id, r.reason, r.span_bytes) for r in rejected])

    def _update_context(self, updates: list[dict]) -> None:
        """Store re-resolved context. Only rows whose context changes are updated: a late root
        usually brings what its children already carry (the same headers), and an updated row
        costs a WAL entry and a rewrite of its row group at the next checkpoint."""
        tbl = pa.Table.from_pylist(updates, schema=_UPDATE_SCHEMA)
        since = self._since_sql({u["trace_id"] for u in updates}, "_spans.received_at")
        with registered(self.con, "_updates", tbl):
            self.con.execute(f"UPDATE _spans SET {_SET_CONTEXT} FROM _updates u WHERE _spans.trace_id = u.trace_id"
                             f" AND _spans.span_id = u.span_id AND ({_CONTEXT_CHANGES}){since}")

    def _demote_stored(self, demoted: dict) -> None:
        sets = ", ".join(f"{c} = NULL" for c in rows.TOKENS + rows.COSTS)
        since = self._since_sql({t for t, _ in demoted}, "_spans.received_at")
        notes = _strings(trace_id=[t for t, _ in demoted], span_id=[s for _, s in demoted], note=list(demoted.values()))
        with registered(self.con, "_demoted", notes):
            self.con.execute(
                f"UPDATE _spans SET step_kind = 'workflow_action', {sets}, anomalies = to_json(list_append("
                "coalesce(CAST(_spans.anomalies AS JSON)::VARCHAR[], []), d.note))::VARCHAR FROM _demoted d"
                f" WHERE _spans.trace_id = d.trace_id AND _spans.span_id = d.span_id{since}")

    def _remember(self, entries: dict, demoted: dict) -> None:
        """Cache the chains written (`entries`; None: forget the key) and clear the usage flag
        of cached spans whose stored row was just demoted."""
        cache = self.cache
        for k in demoted.keys() - entries.keys():  # stored rows demoted: no longer counting usage
            cached = cache.get(k)
            if cached is not None:
                cache[k] = (cached[0], cached[1], False)
        for k, ch in entries.items():
            if ch is None:  # not known (see _skip_duplicates)
                cache.pop(k, None)
                continue
            cache[k] = ch
            cache.move_to_end(k)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
