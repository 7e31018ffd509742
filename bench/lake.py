"""`make bench-lake`: several receivers on one DuckLake vs one receiver on a DuckDB file.

    python bench/lake.py [--seconds 20] [--query-requests 64]

Starts a real PostgreSQL (tests/postgres.py, PostgreSQL's default durability) on 127.0.0.1,
then prints:
* ingest, acknowledged after commit, with 1, 2 and 3 `alephant-otel serve --store ducklake:...`
  processes fed by the same load generator as bench/run.py (pre-serialized 1,000-span requests,
  4 in flight per receiver), and one receiver on a DuckDB file in the same session; with the CPU
  seconds the receivers (and their mapping workers) and PostgreSQL used, so spans per CPU-second
  show what the machine's cores did;
* query latency (warm, median of 5) on a lake and a file holding the same steps, the lake before
  and after `maintain` merged its files, and what the `_spans` de-duplication costs.
Loopback only; every loop is bounded in time.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from postgres import Postgres  # noqa: E402
from bigfile import timed  # noqa: E402
from run import load  # noqa: E402
from workload import make_request  # noqa: E402

CLI = str(Path(sys.executable).parent / "alephant-otel")


def start_serve(store: str, extra=(), data: str | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [CLI, "serve", "--store", store, "--grpc-port", "0", "--no-http", *extra]
    if data:
        cmd += ["--data-path", data]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if m := re.search(r"OTLP/gRPC listening on (127\.0\.0\.1:\d+)", line):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError(f"serve --store {store} did not start")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def tree(pid: int) -> list[psutil.Process]:
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def ingest(pg: Postgres, receivers: int, seconds: float, workdir: Path, seed: int) -> dict:
    requests = [make_request(seed * 1000 + i) for i in range(48)]  # new ids: never duplicates
    if receivers == 0:  # the DuckDB file baseline
        procs = [start_serve(str(workdir / "ingest.duckdb"))]
    else:
        url, data = pg.create_database(f"ingest{receivers}"), str(workdir / f"ingest{receivers}")
        first = start_serve(url, data=data)  # creates the lake; the others join it
        procs = [first] + [start_serve(url) for _ in range(receivers - 1)]
    pg_procs = tree(pg.postmaster_pid())
    watched = [p for proc, _ in procs for p in tree(proc.pid)] + pg_procs
    cpu0 = cpu_seconds(watched)
    spans, elapsed, _ = load([a for _, a in procs], requests, seconds)  # 4 in flight per receiver
    watched = [p for proc, _ in procs for p in tree(proc.pid)] + tree(pg.postmaster_pid())
    cpu = cpu_seconds(watched) - cpu0
    for proc, _ in procs:
        proc.terminate()
    for proc, _ in procs:
        proc.wait(timeout=120)
    return {"spans/s": spans / elapsed, "cpu_s": cpu, "spans_per_cpu_s": spans / cpu if cpu else 0.0}


QUERIES = {
    "count steps": "SELECT count(*) FROM steps",
    "cost by session": "SELECT * FROM sessions ORDER BY cost DESC LIMIT 10",
    "one run's steps": "SELECT * FROM steps WHERE run_id = (SELECT min(run_id) FROM _spans) ORDER BY start_time",
    "daily roll-up": "SELECT * FROM daily_costs",
}


def query_figures(pg: Postgres, n_requests: int, workdir: Path) -> dict[str, dict[str, float]]:
    from alephant_otel.api import map_request, price_steps
    from alephant_otel.otlp import decode_request
    from alephant_otel.store import Store, open_for_reading
    from alephant_otel.store.maintain import maintain

    url, data = pg.create_database("queries"), str(workdir / "queries")
    file = workdir / "queries.duckdb"
    with Store(file) as f, Store(url, data) as lake:
        for i in range(n_requests):
            batch = map_request(decode_request(make_request(900_000 + i)))
            price_steps(batch.steps)
            f.write([dict(s) for s in batch.steps])
            lake.write(batch.steps)  # one commit per 1,000-span request, as a receiver would
    out: dict[str, dict[str, float]] = {}

    def run(label: str, con, extra: dict | None = None):
        out[label] = {name: timed(con, sql) for name, sql in {**QUERIES, **(extra or {})}.items()}
    dedupe = {"rows via _spans (deduplicated)": "SELECT count(*), sum(model_cost) FROM _spans",
              "rows via _span_rows (raw)": "SELECT count(*), sum(model_cost) FROM _span_rows"}
    con = open_for_reading(str(file))
    run("DuckDB file", con)
    con.close()
    con = open_for_reading(url)
    run("DuckLake, unmerged files", con, dedupe)
    con.close()
    maintain(url, keep_snapshots=timedelta(0))
    con = open_for_reading(url)
    run("DuckLake, after maintain", con, dedupe)
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="load per ingest figure")
    ap.add_argument("--query-requests", type=int, default=64, help="1,000-span requests in the query stores")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; load generator and PostgreSQL on the same machine")
    with tempfile.TemporaryDirectory(prefix="alephant-lake-bench-") as tmp, Postgres(durable=True) as pg:
        work = Path(tmp)
        rows = []
        for k in (0, 1, 2, 3):
            r = ingest(pg, k, args.seconds, work, seed=k + 1)
            rows.append((k, r))
            name = "DuckDB file, 1 receiver" if k == 0 else f"DuckLake, {k} receiver{'s' if k > 1 else ''}"
            print(f"{name:28s} {r['spans/s']:9,.0f} spans/s  {r['cpu_s']:6.1f} CPU s  "
                  f"{r['spans_per_cpu_s']:7,.0f} spans per CPU-second", flush=True)
        print(f"\nqueries (ms, warm, median of 5) over {args.query_requests * 1000:,} steps:")
        figures = query_figures(pg, args.query_requests, work)
        names = list(next(iter(figures.values())).keys()) + [n for n in list(figures.values())[1] if n not in QUERIES]
        names = list(dict.fromkeys(names))
        print(f"{'':28s}" + "".join(f"{n[:22]:>24s}" for n in names))
        for label, vals in figures.items():
            print(f"{label:28s}" + "".join(f"{vals[n]:24.1f}" if n in vals else f"{'-':>24s}" for n in names))


if __name__ == "__main__":
    main()
