"""The DuckDB store: idempotency, the public views' columns, schema versions."""
from __future__ import annotations

import json
import pickle

import duckdb
import pytest
from opentelemetry.trace import Status, StatusCode

from alephant_otel.errors import SchemaTooNew, StoreError
from alephant_otel.store import Store, open_for_reading, schema
from test_inheritance import record

STEPS_COLUMNS = """trace_id span_id parent_span_id step_kind operation name start_time end_time duration_ms
status error_type workspace_id department_id agent_id agent_name virtual_key_id session_id session_path
session_name run_id request_id prompt_id prompt_version service_name provider model tool_name input_tokens
cache_read_tokens cache_write_tokens output_tokens reasoning_tokens model_cost cost_source currency properties""".split()
RUNS_COLUMNS = """run_id session_id agent_id workspace_id start_time end_time duration_ms step_count model_calls
tool_calls error_count input_tokens cache_read_tokens cache_write_tokens output_tokens reasoning_tokens
total_tokens cost""".split()
SESSIONS_COLUMNS = "session_id session_name workspace_id run_count step_count start_time end_time cost".split()
AGENTS_COLUMNS = "agent_id agent_name run_count step_count cost".split()


def columns(receiver, view):
    return [r["column_name"] for r in receiver.rows(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [view])]


@pytest.mark.parametrize("view,required", [("steps", STEPS_COLUMNS), ("runs", RUNS_COLUMNS),
                                           ("sessions", SESSIONS_COLUMNS), ("agents", AGENTS_COLUMNS)])
def test_views_have_the_documented_columns_with_comments(receiver, view, required):
    have = columns(receiver, view)
    assert set(required) <= set(have), set(required) - set(have)
    undocumented = receiver.rows("SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND comment IS NULL", [view])
    assert undocumented == []


def test_duplicate_exports_are_stored_and_counted_once(receiver):
    def build(tracer):
        with tracer.start_as_current_span("chat", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100, "alephant.session.id": "s"}):
            pass
    spans = list(record(build).values())
    exp = receiver.exporter()
    exp.export(spans)
    once = receiver.rows("SELECT cost, step_count FROM sessions")[0]
    exp.export(spans)              # a client retry of the same request
    exp.export(spans + spans)      # and a request that repeats a span inside itself
    assert receiver.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 1
    assert receiver.rows("SELECT cost, step_count FROM sessions")[0] == once


def test_raw_fields_are_kept(receiver):
    def build(tracer):
        with tracer.start_as_current_span("raw", attributes={"custom.flag": True, "custom.list": [1, 2]}) as s:
            s.add_event("retrying", {"attempt": 2})
            s.set_status(Status(StatusCode.ERROR, "boom"))
    spans = list(record(build, resource={"deployment.environment": "prod"}).values())
    receiver.exporter().export(spans)
    row = receiver.rows("SELECT * FROM spans")[0]
    assert json.loads(row["attributes"]) == {"custom.flag": True, "custom.list": [1, 2]}
    assert json.loads(row["events"])[0]["name"] == "retrying"
    assert json.loads(row["resource"])["deployment.environment"] == "prod"
    assert (row["status"], row["status_message"], row["span_kind"], row["scope_name"]) == ("ERROR", "boom", "INTERNAL", "tests")
    assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
    assert receiver.rows("SELECT error_count FROM runs")[0]["error_count"] == 1


def test_schema_version_is_recorded_and_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    assert con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()[0] == str(schema.SCHEMA_VERSION)
    con.execute("UPDATE _meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaTooNew, match="newer than this alephant-otel"):
        Store(path)
    with pytest.raises(SchemaTooNew):
        open_for_reading(path)


def test_an_older_file_is_migrated_on_open_for_writing_and_explained_on_read(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    Store(path).close()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.MIGRATIONS, schema.SCHEMA_VERSION - 1,
                        ["ALTER TABLE _spans ADD COLUMN added_later VARCHAR"])
    with pytest.raises(StoreError, match="alephant-otel migrate"):
        open_for_reading(path)
    Store(path).close()
    con = open_for_reading(path)
    assert con.execute("SELECT value FROM _meta WHERE key='schema_version'").fetchone()[0] == str(schema.SCHEMA_VERSION)
    assert "added_later" in [r[0] for r in con.execute("DESCRIBE _spans").fetchall()]
    con.close()


def _bench_steps():
    """seed -> 40 mapped and priced steps of bench/run.py's workload (random ids drawn once per
    seed; each call maps the request anew, as a retried export would be)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    from workload import make_request
    from alephant_otel import wire
    from alephant_otel.mapping import map_request
    from alephant_otel.pricing import price_steps
    requests = {}

    def steps(seed):
        batch = map_request(wire.parse(requests.setdefault(seed, make_request(seed, spans=40))))
        price_steps(batch.steps)
        return batch.steps
    return steps, requests


@pytest.mark.parametrize("cache_size", [1, 50_000])
def test_each_span_is_stored_once_whatever_the_writer_remembers(tmp_path, monkeypatch, cache_size):
    """_spans has no key index: the writer looks for a batch's spans among the stored spans of
    its traces that were stored before (read from each trace's first_received on), and not at
    all for a trace new to the file. Retries mixed with new spans, traces continued in a later
    export, a writer that remembers nothing (a restart) and a clock set back: every export's
    counts are exact, each span is stored once, and received_at never decreases."""
    from alephant_otel.store import writer as writer_module
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    steps, requests = _bench_steps()
    con = open_for_writing(tmp_path / "s.duckdb")
    # no index on _spans: its row groups are not merged at each checkpoint (see database.py)
    assert con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0] == 0
    w = Writer(con, cache_size=cache_size)
    assert w.write(steps(0)).inserted == 40
    r = w.write(steps(0)[:25] + steps(1))  # a retry of 25 stored spans, with 40 new ones
    assert (r.inserted, r.duplicates) == (40, 25)
    r = w.write(steps(2)[:18])  # traces cut in two exports: the rest comes with a retry
    assert (r.inserted, r.duplicates) == (18, 0)
    r = w.write(steps(2)[12:])
    assert (r.inserted, r.duplicates) == (22, 6)
    real = writer_module.time.time
    monkeypatch.setattr(writer_module.time, "time", lambda: real() - 3600)  # the clock goes back an hour
    w = Writer(con, cache_size=cache_size)  # remembers nothing: every trace is looked up
    r = w.write(steps(1)[5:] + steps(3)[:30] + steps(0)[39:])
    assert (r.inserted, r.duplicates) == (30, 36)
    r = w.write(steps(3))
    assert (r.inserted, r.duplicates) == (10, 30)
    assert con.execute("SELECT count(*) FROM _traces").fetchone()[0] == len(
        {s["trace_id"] for seed in requests for s in steps(seed)})
    n, distinct, ordered = con.execute(
        "SELECT count(*), count(DISTINCT (trace_id, span_id)),"
        " bool_and(received_at >= coalesce(before, received_at))"
        " FROM (SELECT *, lag(received_at) OVER (ORDER BY rowid) AS before FROM _spans)").fetchone()
    assert n == distinct == 40 * 4 and ordered
    stored = con.execute("SELECT sum(input_tokens) FROM _spans").fetchone()[0]
    assert stored == sum(s["input_tokens"] or 0 for seed in requests for s in steps(seed))  # nothing twice


def test_a_trace_deleted_while_its_writer_remembers_it_is_stored_and_recorded_again(tmp_path):
    """Retention (`maintain`) can delete a trace that a writer in the same process remembers;
    the file, not that memory, decides whether the trace is new, so when it comes back it is
    recorded in _traces again and a later retry (by any writer) is still recognised."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    steps, _ = _bench_steps()
    con = open_for_writing(tmp_path / "s.duckdb")
    w = Writer(con)
    assert w.write(steps(0)).inserted == 40
    con.execute("DELETE FROM _spans")
    con.execute("DELETE FROM _traces")  # as maintain's retention does for traces left empty
    assert w.write(steps(0)).inserted == 40
    assert Writer(con).write(steps(0)).duplicates == 40
    assert con.execute("SELECT count(*) FROM _spans").fetchone()[0] == 40


def test_a_trace_that_comes_back_as_ready_rows_is_not_judged_by_what_the_cache_remembers(tmp_path):
    """The writer remembers a model call it demoted; retention deletes its trace, and the call
    comes back alone, ready (rows.prepare), so the writer inserts it without looking. When its
    child with usage comes later, the stored call is demoted again: the stale memory of it as
    already demoted is not used."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.rows import prepare
    from alephant_otel.store.writer import Writer

    con = open_for_writing(tmp_path / "s.duckdb")
    w = Writer(con)
    w.write([_llm("a", None), _llm("c", "a")])
    assert _demotions(con)[("t1", "a")] == ("workflow_action", None, 1)
    con.execute("DELETE FROM _spans")
    con.execute("DELETE FROM _traces")
    ready, rest = prepare([_llm("a", None)])
    assert rest == [] and w.write([], (), [ready]).inserted == 1
    assert _demotions(con)[("t1", "a")] == ("model_call", 10, 0)
    w.write([_llm("c", "a")])
    assert _demotions(con) == {("t1", "a"): ("workflow_action", None, 1), ("t1", "c"): ("model_call", 10, 0)}


def test_a_schema_1_file_loses_its_key_index_and_keeps_its_spans_once(tmp_path):
    """Schema 1 kept a primary key on _spans; migrating copies the spans in the order received
    into a table without it and records their traces, so the spans already stored are still
    recognised when retried."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    steps, _ = _bench_steps()
    new = tmp_path / "new.duckdb"
    con = open_for_writing(new)
    Writer(con).write(steps(0) + steps(1))
    con.close()
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE _meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO _meta VALUES ('schema_version', '1')")
    con.execute("CREATE TABLE _spans (" + ", ".join(f"{c} {t}" for c, t, _ in schema.SPAN_COLUMNS)
                + ", PRIMARY KEY (trace_id, span_id))")
    for stmt in schema.DDL:
        if "_spans (" not in stmt and "_traces" not in stmt and "_meta" not in stmt:
            con.execute(stmt)
    con.execute(f"ATTACH '{new}' AS n (READ_ONLY)")
    con.execute("INSERT INTO _spans SELECT * FROM n._spans ORDER BY random()")
    con.close()

    con = open_for_writing(old)
    assert con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = '_spans'"
                       " AND constraint_type = 'PRIMARY KEY'").fetchone()[0] == 0
    assert con.execute("SELECT count(*), count(DISTINCT trace_id) FROM _spans").fetchone() == (
        80, con.execute("SELECT count(*) FROM _traces").fetchone()[0])
    r = Writer(con).write(steps(1) + steps(2))
    assert (r.inserted, r.duplicates) == (40, 40)
    assert con.execute("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM steps").fetchone() == (120, 120)
    con.close()


def test_a_group_commit_counts_each_key_for_the_first_batch_that_has_it(tmp_path):
    """The writer thread commits queued batches together; each export is told what it inserted.
    A key stored before, or in two batches of the group, is inserted once: a duplicate for
    every other batch (a group where every step is new takes a shorter path)."""
    from concurrent.futures import Future

    from alephant_otel.mapping import MappedBatch
    from alephant_otel.receiver.pipeline import Pipeline

    def batch(*spans):
        return MappedBatch(steps=[{"trace_id": "t1", "span_id": s, "parent_span_id": None, "tiers": [{}] * 4}
                                  for s in spans])

    def commit(*batches):
        group = [(b, Future()) for b in batches]
        pipeline._commit(group)
        return [(r.inserted, r.duplicates) for r in (fut.result(0) for _, fut in group)]

    store = Store(tmp_path / "g.duckdb")
    pipeline = Pipeline(store)
    try:
        assert commit(batch("a", "b"), batch("c")) == [(2, 0), (1, 0)]
        assert commit(batch("d", "e"), batch("e", "f"), batch("f", "f")) == [(2, 0), (1, 1), (0, 1)]
        assert commit(batch("a", "g"), batch("h")) == [(1, 1), (1, 0)]
    finally:
        store.close()


def test_resolved_columns_memoized_within_a_write_stay_per_trace_and_per_imposed_context(tmp_path):
    """Spans whose chains share their tier objects are resolved once per write (by identity).
    What else a resolution depends on still separates them: the trace (its id is the run id
    by default) and what the export call imposes (a virtual key's forced workspace)."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    outer = {"agent_id": "shared-agent"}  # one resource's tier object, shared by every span
    empty = {}  # shared too: spans of different traces can have the very same tier objects
    span_ctx = {"session_id": "s1", "properties": {"tier": "gold"}}

    def step(trace, sid, parent, own, imposed=()):
        return {"trace_id": trace, "span_id": sid, "parent_span_id": parent,
                "tiers": [own, outer, empty, empty, *imposed]}

    key_a, key_b = {"workspace_id": "ws-a"}, {"workspace_id": "ws-b"}
    steps = [step("t1", "root", None, dict(span_ctx)), step("t1", "kid", "root", dict(span_ctx)),
             step("t1", "other", "root", {"session_id": "s2"}),
             step("t2", "root", None, empty), step("t3", "root", None, empty),
             step("t4", "root", None, empty, [key_a, empty]), step("t4", "kid-a", "root", empty, [key_a, empty]),
             step("t4", "kid-b", "root", empty, [key_b, empty])]
    con = open_for_writing(tmp_path / "m.duckdb")
    Writer(con).write(steps)
    rows = {(t, s): rest for t, s, *rest in con.execute(
        "SELECT trace_id, span_id, session_id, run_id, agent_id, workspace_id, properties FROM _spans").fetchall()}
    gold = '{"tier":"gold"}'
    assert rows[("t1", "root")] == rows[("t1", "kid")] == ["s1", "t1", "shared-agent", None, gold]
    assert rows[("t1", "other")] == ["s2", "t1", "shared-agent", None, gold]
    assert rows[("t2", "root")] == [None, "t2", "shared-agent", None, None]
    assert rows[("t3", "root")] == [None, "t3", "shared-agent", None, None]
    assert [rows[("t4", s)][3] for s in ("root", "kid-a", "kid-b")] == ["ws-a", "ws-a", "ws-b"]
    con.close()


def test_a_child_repeating_its_parents_context_shares_its_tier_objects():
    from alephant_otel.inherit import chain
    from alephant_otel.mapping.context import merge

    parent = chain([{"run_id": "r", "properties": {"a": "1"}}, {"agent_id": "x"}, {}, {}], None)
    kid = chain([{"run_id": "r", "properties": {"a": "1"}}, {}, {}, {}, {"workspace_id": "w"}], parent)
    assert all(k is p for k, p in zip(kid, parent))
    other = [{"run_id": "r", "properties": {"b": "2"}}, {"agent_id": "x", "user_id": "u"}, {}, {}]
    kid2 = chain(other, parent)
    assert kid2 == [merge(p, o) for p, o in zip(parent, other)] and kid2[0] is not parent[0]
    assert kid2[0]["properties"] == {"a": "1", "b": "2"}


def _llm(sid, parent, tokens=10, trace="t1", tiers=None):
    """A step as the mapper makes it: a model call with usage (tokens), without (tokens=None),
    or a workflow action (tokens=False)."""
    kind = "workflow_action" if tokens is False else "model_call"
    return {"trace_id": trace, "span_id": sid, "parent_span_id": parent, "name": sid, "step_kind": kind,
            "input_tokens": tokens or None, "output_tokens": 5 if tokens else None,
            "model_cost": None, "anomalies": None, "tiers": tiers or [{}] * 4}


def _demotions(con) -> dict:
    """(trace, span) -> (step_kind, input_tokens, number of demotion notes)."""
    return {(t, s): (k, i, sum("usage repeated by child" in n for n in json.loads(a or "[]")))
            for t, s, k, i, a in con.execute(
                "SELECT trace_id, span_id, step_kind, input_tokens, anomalies FROM _spans").fetchall()}


def _write_each(tmp_path, name, batches, cache_size=50_000):
    import copy

    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    con = open_for_writing(tmp_path / f"{name}.duckdb")
    w = Writer(con, cache_size=cache_size)
    for b in batches:
        w.write(copy.deepcopy(b))
    out = _demotions(con)
    con.close()
    return out


@pytest.mark.parametrize("cache_size", [1, 50_000])
def test_a_repeated_usage_is_demoted_when_the_model_call_between_has_left_the_cache(tmp_path, cache_size):
    """outer (usage) > inner (a model call without usage) > provider call (usage), one export
    each. Outer is demoted whatever the cache remembers: with a cache of one span, inner (the
    parent) is cached but outer is not, and the walk up must read the trace, not stop there."""
    got = _write_each(tmp_path, "evicted", [[_llm("outer", None)], [_llm("inner", "outer", None)],
                                            [_llm("call", "inner")]], cache_size)
    assert got[("t1", "outer")] == ("workflow_action", None, 1)
    assert got[("t1", "inner")] == ("model_call", None, 0)
    assert got[("t1", "call")] == ("model_call", 10, 0)


def test_a_repeated_usage_is_demoted_when_the_repeating_span_is_retried_with_its_child(tmp_path):
    """The parent (stored) comes again in the export that brings its child: the retried copy
    is not inserted, so its demotion must reach the stored row (else its tokens count twice)."""
    got = _write_each(tmp_path, "retried", [[_llm("outer", None)], [_llm("outer", None), _llm("call", "outer")]])
    assert got[("t1", "outer")] == ("workflow_action", None, 1)
    assert got[("t1", "call")] == ("model_call", 10, 0)
    # a retry of an already demoted span and a new child: still demoted, with one note
    got = _write_each(tmp_path, "retried2", [[_llm("outer", None)], [_llm("call", "outer")],
                                             [_llm("outer", None), _llm("call2", "outer")]])
    assert got[("t1", "outer")] == ("workflow_action", None, 1)


@pytest.mark.parametrize("cache_size", [1, 50_000])
def test_a_stored_model_call_is_demoted_once_by_two_children_arriving_later(tmp_path, cache_size):
    """Two provider calls under one framework call, each exported after it: the framework call is
    demoted by the first, and the cache must know it, so the second adds no second note."""
    got = _write_each(tmp_path, f"twice{cache_size}", [[_llm("outer", None)], [_llm("a", "outer")],
                                                       [_llm("b", "outer")]], cache_size)
    assert got[("t1", "outer")] == ("workflow_action", None, 1)
    assert got[("t1", "a")] == got[("t1", "b")] == ("model_call", 10, 0)


def _contexts(tmp_path, name, batches, cache_size=50_000) -> dict:
    """(trace, span) -> (run_id, agent_id, session_id) after writing `batches`, one write each."""
    import copy

    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    con = open_for_writing(tmp_path / f"{name}.duckdb")
    w = Writer(con, cache_size=cache_size)
    for b in batches:
        w.write(copy.deepcopy(b))
    out = {(t, s): rest for t, s, *rest in con.execute(
        "SELECT trace_id, span_id, run_id, agent_id, session_id FROM _spans").fetchall()}
    out["orphans"] = con.execute("SELECT span_id, parent_span_id FROM _orphans ORDER BY ALL").fetchall()
    con.close()
    return out


@pytest.mark.parametrize("cache_size", [1, 50_000])
def test_an_orphan_retried_in_the_export_that_brings_its_parent_takes_the_parents_context(tmp_path, cache_size):
    """child is stored as an orphan (its parent has not arrived); later one export carries the
    parent and a retry of child. The retried copy is not inserted, so the stored row (and its
    stored descendants', and what the cache remembers of it) must get the parent's context."""
    tiers = [{"agent_id": "a", "session_id": "s", "run_id": "r"}, {}, {}, {}]
    parent, child = _llm("parent", None, False, tiers=tiers), _llm("child", "parent")
    got = _contexts(tmp_path, f"c{cache_size}", [
        [child], [_llm("grandchild", "child", None)], [parent, child], [_llm("late", "child", False)]], cache_size)
    want = _contexts(tmp_path, f"ref{cache_size}", [
        [parent, child, _llm("grandchild", "child", None), _llm("late", "child", False)]])
    assert want[("t1", "child")] == ["r", "a", "s"]
    assert got == want
    assert got["orphans"] == []


def _random_traces(seed: int) -> tuple[list[dict], list[list[dict]]]:
    """Random traces (nested model calls with and without usage, missing parents, shared tier
    objects), written in random batches with retries and keys repeated within a batch."""
    import copy
    import random
    from decimal import Decimal

    r = random.Random(seed)
    pool = []

    def tier():
        if pool and r.random() < 0.6:
            return r.choice(pool)
        t = {} if r.random() < 0.5 else {f: r.choice("abc") for f in r.sample(["session_id", "run_id", "agent_id"], 2)}
        pool.append(t)
        return t

    steps = []
    for ti in range(24):
        ids = [f"s{ti}-{i}" for i in range(r.randrange(1, 9))]
        for i, sid in enumerate(ids):
            parent = None if i == 0 else r.choice(ids[:i] + ([f"missing{ti}"] if r.random() < 0.1 else []))
            mc = r.random() < 0.6
            steps.append({"trace_id": f"t{ti % 16}", "span_id": sid, "parent_span_id": parent, "name": sid,
                          "step_kind": "model_call" if mc else "workflow_action",
                          "input_tokens": r.choice([None, 0, 10]) if mc else None,
                          "output_tokens": r.choice([None, 5]) if mc else None,
                          "model_cost": r.choice([None, Decimal("0.001")]) if mc else None,
                          "anomalies": r.choice([None, '["x"]']), "tiers": [tier() for _ in range(4)]})
    r.shuffle(steps)
    batches, i = [], 0
    while i < len(steps):
        k = r.randrange(1, 20)
        b = steps[i:i + k]
        if r.random() < 0.3 and i:  # a retry of some earlier steps
            b += r.sample(steps[:i], min(i, 5))
        if r.random() < 0.2:  # a key twice in one write
            b.append(b[0])
        batches.append([copy.deepcopy(s) for s in b])
        i += k
    return steps, batches


def _stored(con) -> tuple:
    """What a store holds: rows (without received_at), rows without anomalies, orphans, demotions."""
    return (con.execute("SELECT * EXCLUDE (received_at) FROM _spans ORDER BY trace_id, span_id").fetchall(),
            con.execute("SELECT * EXCLUDE (received_at, anomalies) FROM _spans ORDER BY trace_id, span_id").fetchall(),
            con.execute("SELECT * FROM _orphans ORDER BY ALL").fetchall(), _demotions(con))


# (2, 3, 4: seeds that the cache-dependent writer failed; 3, 21, 38: seeds where a retried
# orphan kept the context it had before its parent came)
@pytest.mark.parametrize("seed", [2, 3, 4, 21, 38])
def test_stored_rows_do_not_depend_on_the_cache_and_usage_is_counted_once(tmp_path, seed):
    """The cache is only an optimisation: the same exports give the same rows with a cache of one
    span and of 50k. And whatever the order and the retries, the rows are those of the traces
    written once each in one batch (all but the demotion notes' text, which names the child found
    first): resolved context included. A model call with usage is demoted (with one note)
    exactly when a descendant model call carries usage too."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    steps, batches = _random_traces(seed)
    tables = []
    for cache_size, writes in ((1, batches), (50_000, batches), (50_000, [steps])):
        con = open_for_writing(tmp_path / f"r{cache_size}-{len(writes)}.duckdb")
        w = Writer(con, cache_size=cache_size)
        for b in writes:
            w.write([dict(s) for s in b])
        tables.append(_stored(con))
        con.close()
    assert tables[0] == tables[1]
    assert tables[0][1:] == tables[2][1:]  # the reference: each span once, in one write
    usage = {(s["trace_id"], s["span_id"]) for s in steps
             if s["step_kind"] == "model_call" and (s["input_tokens"] is not None or s["output_tokens"] is not None)}
    parent = {(s["trace_id"], s["span_id"]): s["parent_span_id"] for s in steps}
    repeated = set()
    for t, sid in usage:
        cur = parent[(t, sid)]
        while (t, cur) in parent:
            if (t, cur) in usage:
                repeated.add((t, cur))
            cur = parent[(t, cur)]
    got = tables[0][3]
    assert {k for k, (kind, _, notes) in got.items() if notes} == repeated
    assert all(got[k] == ("workflow_action", None, 1) for k in repeated)
    assert all(got[k][0] == "model_call" for k in usage - repeated)


# (10, 43: seeds where the demotion notes named another child before the walks went in key order)
@pytest.mark.parametrize("seed", [2, 3, 10, 21, 43])
@pytest.mark.parametrize("per_write", [1, 2, 4])
def test_rows_prepared_in_the_worker_are_stored_as_the_writer_would_store_the_steps(tmp_path, seed, per_write):
    """rows.prepare resolves and demotes a request's traces as if new to the store, before the
    writer (in the mapping worker). Whatever the writer then does with them (inserts them as
    they are, with their orphans, when their trace is new; otherwise, a retry, a trace continued from an earlier write or
    in another request of the same write, resolves them again as steps) the store holds what
    writing the plain steps gives, with the same counts."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.rows import prepare
    from alephant_otel.store.writer import Writer

    _, batches = _random_traces(seed)
    writes = [batches[i:i + per_write] for i in range(0, len(batches), per_write)]
    results, tables, fast = [], [], 0
    for prepared in (False, True):
        con = open_for_writing(tmp_path / f"p{prepared}.duckdb")
        w = Writer(con)
        counts = []
        for group in writes:
            if prepared:
                # each crosses from its worker to the receiver pickled, as in serve
                pieces = [(pickle.loads(pickle.dumps(r)) if r is not None else None, rest)
                          for r, rest in (prepare([dict(s) for s in b]) for b in group)]
                fast += sum(len(r) for r, _ in pieces if r is not None)
                r = w.write([s for _, rest in pieces for s in rest], (), [r for r, _ in pieces])
            else:
                r = w.write([dict(s) for b in group for s in b])
            counts.append((r.inserted, r.duplicates, sorted(r.inserted_keys)))
        results.append(counts)
        tables.append(_stored(con))
        con.close()
    assert fast > 0  # some rows did come ready
    assert results[0] == results[1]
    assert tables[0] == tables[1]


def test_prepare_resolves_traces_as_if_new_and_keeps_as_steps_those_it_cannot():
    """rows.prepare resolves each trace of a request as the writer would if the trace were new
    to the store: a span whose parent is not in the request is an orphan (its chain starts at
    itself). A trace with a span sent twice, or one the mapper failed on, stays as steps."""
    from alephant_otel.store.rows import prepare

    whole = [_llm("a", None), _llm("b", "a"), _llm("c", "b")]
    part = [_llm("x", "gone", trace="t2", tiers=[{"session_id": "s"}, {}, {}, {}]), _llm("x2", "x", trace="t2")]
    twice = [_llm("y", None, trace="t3"), _llm("y", None, trace="t3")]
    failed = [{**_llm("z", None, trace="t4"), "mapping_error": "boom"}]
    ready, rest = prepare(whole + part + twice + failed)
    assert ready.traces == ["t1", "t2"] and len(ready) == 5
    assert ready.orphans == [("t2", "x", "gone")]
    assert [s["trace_id"] for s in rest] == ["t3", "t3", "t4"]
    rows = {r["span_id"]: r for r in ready.table.to_pylist()}
    # resolved (no run id anywhere: the trace's) and demoted (c repeats b's usage, b a's)
    assert {rows[s]["run_id"] for s in "abc"} == {"t1"}
    assert [rows[s]["step_kind"] for s in "abc"] == ["workflow_action", "workflow_action", "model_call"]
    assert (rows["x2"]["session_id"], rows["x"]["step_kind"]) == ("s", "workflow_action")  # under the orphan
    assert rows["a"]["received_at"] is None  # the writer stamps it
    assert set(ready.undo) == {("t1", "a"), ("t1", "b"), ("t2", "x")}  # as they were, if sent back
    assert ready.undo[("t1", "a")]["step_kind"] == "model_call"


def test_an_orphan_ready_in_a_new_trace_is_recorded_and_adopted_when_its_parent_comes(tmp_path):
    """Children exported before their root (the usual order) arrive ready, with their orphans;
    the root, in a later write, adopts them: their run context comes from it."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.rows import prepare
    from alephant_otel.store.writer import Writer

    con = open_for_writing(tmp_path / "s.duckdb")
    w = Writer(con)
    ready, rest = prepare([_llm("b", "a"), _llm("c", "b", tokens=None)])
    assert rest == [] and w.write([], (), [ready]).inserted == 2
    assert con.execute("SELECT span_id, parent_span_id FROM _orphans").fetchall() == [("b", "a")]
    ready, rest = prepare([_llm("a", None, tokens=False, tiers=[{"run_id": "r1"}, {}, {}, {}])])
    assert w.write(rest, (), [ready]).inserted == 1  # not new: written as steps, adopting b
    assert con.execute("SELECT count(*) FROM _orphans").fetchone()[0] == 0
    assert dict(con.execute("SELECT span_id, run_id FROM _spans").fetchall()) == {"a": "r1", "b": "r1", "c": "r1"}


def test_roll_ups_take_each_field_from_the_earliest_step_that_has_it(tmp_path):
    """A session's (and run's) agent and name come from its earliest step that has one, not
    from its earliest step: a first step without an agent does not blank the column."""
    from alephant_otel.store.database import open_for_writing
    from alephant_otel.store.writer import Writer

    def step(trace, start, ctx):
        return {"trace_id": trace, "span_id": "s1", "parent_span_id": None, "start_time": start,
                "end_time": start + 10, "tiers": [{"session_id": "s", "run_id": "r", **ctx}, {}, {}, {}]}

    con = open_for_writing(tmp_path / "e.duckdb")
    Writer(con).write([step("t1", 1_000, {}), step("t3", 3_000, {"agent_id": "a-last", "session_name": "last"}),
                       step("t2", 2_000, {"agent_id": "a-second", "session_name": "second"})])
    assert con.execute("SELECT agent_id, session_name, step_count FROM sessions").fetchall() == [("a-second", "second", 3)]
    assert con.execute("SELECT agent_id, session_id FROM runs").fetchall() == [("a-second", "s")]
    con.close()


def test_a_registered_table_serves_one_statement_and_a_second_read_fails_loudly():
    """The writer hands DuckDB its tables as Arrow C streams (store.writer.registered), which
    can be read once. A statement that read one twice must fail, not see an empty table."""
    import pyarrow as pa

    from alephant_otel.store.writer import registered

    con = duckdb.connect()
    table = pa.table({"trace_id": ["a", "b", "c"]})
    with registered(con, "_t", table):
        assert con.execute("SELECT count(*) FROM _t").fetchone() == (3,)
        with pytest.raises(duckdb.InvalidInputException, match="consumed"):
            con.execute("SELECT count(*) FROM _t").fetchone()
    with registered(con, "_t", table):  # a new block reads it again, whole
        assert sorted(r for (r,) in con.execute("SELECT trace_id FROM _t").fetchall()) == ["a", "b", "c"]
    with pytest.raises(duckdb.CatalogException):  # unregistered when the block ends
        con.execute("SELECT * FROM _t")
