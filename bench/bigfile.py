"""Query latency on a big store: fill a file with N synthetic steps in SQL (no ingest), then
time the roll-ups (warm, median of 5). `python bench/bigfile.py 1000000 10000000`."""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from alephant_otel.store import Store  # noqa: E402

FILL = """
INSERT INTO _spans (trace_id, span_id, parent_span_id, name, span_kind, start_time, end_time, duration_ms, status,
  step_kind, operation, provider, model, input_tokens, output_tokens, cache_read_tokens, model_cost, computed_cost,
  cost_source, currency, workspace_id, agent_id, session_id, run_id, user_id, service_name, received_at)
SELECT printf('%032x', i // 10), printf('%016x', i), CASE WHEN i % 10 = 0 THEN NULL ELSE printf('%016x', i - i % 10) END,
  'chat gpt-4o-mini', 'CLIENT', TIMESTAMP '2026-11-01' + to_seconds(i // 50), TIMESTAMP '2026-11-01' + to_seconds(i // 50 + 1),
  1000.0, CASE WHEN i % 20 = 0 THEN 'ERROR' ELSE 'UNSET' END, 'model_call', 'chat', 'openai', 'gpt-4o-mini',
  1000 + i % 500, 100 + i % 50, i % 300, (1000 + i % 500) * 0.00000015 + (100 + i % 50) * 0.0000006,
  (1000 + i % 500) * 0.00000015 + (100 + i % 50) * 0.0000006, 'computed', 'USD',
  'ws-' || (i % 5), 'agent-' || (i % 20), 'sess-' || (i // 200), 'run-' || (i // 10), 'user-' || (i % 1000), 'bench', now()
FROM range({start}, {stop}) t(i);
INSERT OR IGNORE INTO _traces SELECT DISTINCT printf('%032x', i // 10), now() FROM range({start}, {stop}) t(i)"""


def timed(con, sql: str, params=None, runs: int = 5) -> float:
    """Warm query latency in ms: one run to warm, then the median of `runs`."""
    con.execute(sql, params or []).fetchall()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(sql, params or []).fetchall()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def fill(con, upto: int, done: int = 0) -> None:
    """Add synthetic steps [done, upto) straight into the store open on `con`."""
    for start in range(done, upto, 1_000_000):
        con.execute(FILL.format(start=start, stop=min(upto, start + 1_000_000)))


def main(sizes: list[int]) -> None:
    db = Path(tempfile.mkdtemp(prefix="alephant-big-")) / "big.duckdb"
    Store(db).close()
    con = duckdb.connect(str(db))
    done = 0
    for n in sizes:
        t0 = time.perf_counter()
        fill(con, n, done)
        done = n
        print(f"{n:>11,} steps (filled in {time.perf_counter() - t0:.0f} s): "
              f"cost by session {timed(con, 'SELECT * FROM sessions ORDER BY cost DESC LIMIT 20'):.0f} ms, "
              f"one run's steps {timed(con, 'SELECT * FROM steps WHERE run_id = ?', ['run-12345']):.0f} ms, "
              f"daily roll-up {timed(con, 'SELECT * FROM daily_costs'):.0f} ms, "
              f"cost by agent {timed(con, 'SELECT * FROM agents'):.0f} ms", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000])
