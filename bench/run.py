"""`make bench`: ingest and query figures on this machine, printed as one table.

    python bench/run.py            # quick: ~1-2 minutes
    python bench/run.py --full     # longer runs and bigger files (adds the 1M-step query figures)

Measures, in one run: the decode-only ceiling (a gRPC server that only parses each request and
acknowledges it) and our receiver (`alephant-otel serve`, acknowledging after commit), both fed
by the same load generator sending pre-serialized 1,000-span requests with 4 in flight; export
latency p50/p99; peak RSS of the server process; bytes per stored step; and query latencies
(warm, median of 5) on the file written. Loopback only; every loop is bounded in time.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import duckdb
import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import make_request  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CLI = str(Path(sys.executable).parent / "alephant-otel")


def load(address: str, requests: list[bytes], seconds: float, in_flight: int = 4):
    """Send requests round-robin from `in_flight` threads for `seconds`; retry refusals.
    Returns (spans acknowledged, elapsed, latencies in ms)."""
    stop = time.monotonic() + seconds
    lat: list[float] = []
    acked = [0]
    lock = threading.Lock()

    def worker(k: int):
        ch = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
        call = ch.unary_unary(METHOD)
        i = k
        while time.monotonic() < stop:
            body = requests[i % len(requests)]
            t0 = time.perf_counter()
            try:
                call(body, timeout=60)
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    time.sleep(0.05)
                    continue
                raise
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)
                acked[0] += 1000
            i += in_flight
        ch.close()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked[0], time.monotonic() - t0, lat


def decode_only_ceiling(requests: list[bytes], seconds: float) -> float:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def export(data, context):
        ExportTraceServiceRequest.FromString(data)
        return b""
    server = grpc.server(futures.ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": grpc.unary_unary_rpc_method_handler(export)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        spans, elapsed, _ = load(f"127.0.0.1:{port}", requests, seconds)
    finally:
        server.stop(1).wait()
    return spans / elapsed


def start_server(db: Path):
    proc = subprocess.Popen([CLI, "serve", "--db", str(db), "--grpc-port", "0", "--no-http"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = ""
    while "Stop with" not in out:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("serve exited:\n" + out)
        out += line
    port = re.search(r"OTLP/gRPC listening on 127\.0\.0\.1:(\d+)", out).group(1)
    return proc, f"127.0.0.1:{port}"


def peak_rss(proc: subprocess.Popen, stop: threading.Event, out: list[int]) -> None:
    p = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
        except psutil.Error:
            break
        out[0] = max(out[0], rss)
        time.sleep(0.2)


def timed(con, sql: str, params=None, runs: int = 5) -> float:
    con.execute(sql, params or []).fetchall()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(sql, params or []).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="longer runs and bigger files")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of load per measurement")
    ap.add_argument("--prefill", type=int, default=0, metavar="N",
                    help="first fill the file with N synthetic steps (bench/bigfile.py) to measure ingest on a big store")
    args = ap.parse_args()
    seconds = args.seconds or (60 if args.full else 15)
    requests = [make_request(i) for i in range(40 if args.full else 12)]
    rows = []

    ceiling = decode_only_ceiling(requests, min(seconds, 10))
    rows.append(("decode-only ceiling (spans/s)", f"{ceiling:,.0f}"))

    tmp = Path(tempfile.mkdtemp(prefix="alephant-bench-"))
    db = tmp / "bench.duckdb"
    if args.prefill:
        from bigfile import FILL
        from alephant_otel.store import Store
        Store(db).close()
        with duckdb.connect(str(db)) as con:
            for start in range(0, args.prefill, 1_000_000):
                con.execute(FILL.format(start=start, stop=min(args.prefill, start + 1_000_000)))
        rows.append(("steps in the file before the load (synthetic)", f"{args.prefill:,}"))
    proc, address = start_server(db)
    stop, rss = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(proc, stop, rss))
    sampler.start()
    try:
        # fresh requests each round (new span ids): every span is a new step
        fresh = [make_request(1000 + i) for i in range(int(seconds * 20))]
        spans, elapsed, lat = load(address, fresh, seconds)
    finally:
        stop.set()
        sampler.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    rate = spans / elapsed
    lat.sort()
    rows += [
        ("ingest into DuckDB, acked after commit (spans/s)", f"{rate:,.0f}"),
        ("ratio to decode-only ceiling", f"{rate / ceiling:.3f}"),
        ("export latency p50 / p99 (ms, 1,000-span requests)", f"{lat[len(lat) // 2]:.0f} / {lat[int(len(lat) * 0.99)]:.0f}"),
        ("peak RSS of the server (MiB)", f"{rss[0] / 2**20:,.0f}"),
    ]
    con = duckdb.connect(str(db), read_only=True)
    n = con.execute("SELECT count(*) FROM _spans").fetchone()[0]
    size = sum(f.stat().st_size for f in tmp.iterdir() if f.name.startswith("bench.duckdb"))
    rows.append((f"bytes per step on disk ({n:,} steps, content not stored)", f"{size / max(n, 1):,.0f}"))
    run_id = con.execute("SELECT run_id FROM _spans LIMIT 1").fetchone()[0]
    rows += [
        (f"cost by session over {n:,} steps (ms)", f"{timed(con, 'SELECT * FROM sessions ORDER BY cost DESC LIMIT 20'):.1f}"),
        ("one run's step tree (ms)", f"{timed(con, 'SELECT * FROM steps WHERE run_id = ? ORDER BY start_time', [run_id]):.1f}"),
        (f"daily roll-up over {n:,} steps (ms)", f"{timed(con, 'SELECT * FROM daily_costs'):.1f}"),
    ]
    con.close()
    width = max(len(k) for k, _ in rows)
    print(f"\nalephant-otel benchmark ({'full' if args.full else 'quick'}; {os.cpu_count()} cores, Python {sys.version.split()[0]})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
