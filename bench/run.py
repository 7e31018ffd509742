"""`make bench`: ingest and query figures on this machine, printed as one table.

    python bench/run.py            # quick: about 3 minutes
    python bench/run.py --full     # 60 s per figure, plus the 1M/5M/10M-step growth curve

Measures, in one run: the decode-only ceiling (a gRPC server that only parses each request and
acknowledges it) and our receiver (`alephant-otel serve`, acknowledging after commit), both fed
by the same load generator sending pre-serialized 1,000-span requests with 4 in flight (closed
loop, three rounds: the median and the range); the server's CPU time per span over those
rounds (all its processes: a figure the load generator's share of the cores does not blur);
export latency p50/p99 there and at fixed offered loads (open loop: 20,000 spans/s and half the
measured rate, latency counted from when each request was due); peak RSS of the server and its
worker processes; bytes per stored step; query latencies (warm, median of 5) on the file
written. `--full` adds the growth curve: ingest rate and query latencies with
1M, 5M and 10M steps in the file. Loopback only; every loop is bounded in time.
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
import bigfile  # noqa: E402
from bigfile import timed  # noqa: E402
from workload import make_request  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CLI = str(Path(sys.executable).parent / "alephant-otel")


def load(address, requests: list[bytes], seconds: float, in_flight: int = 4):
    """Send requests round-robin from `in_flight` threads per receiver (`address` is one
    host:port or a list of them) for `seconds`; retry refusals. Returns (spans acknowledged,
    elapsed, latencies in ms)."""
    addresses = [address] if isinstance(address, str) else list(address)
    stop = time.monotonic() + seconds
    lat: list[float] = []
    acked = [0]
    lock = threading.Lock()
    step = in_flight * len(addresses)

    def worker(addr: str, k: int):
        ch = grpc.insecure_channel(addr, options=[("grpc.max_send_message_length", 64 << 20)])
        call = ch.unary_unary(METHOD)
        i = k
        while time.monotonic() < stop:
            body = requests[i % len(requests)]
            t0 = time.perf_counter()
            try:
                call(body, timeout=120)
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    time.sleep(0.05)
                    continue
                raise
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)
                acked[0] += 1000
            i += step
        ch.close()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(a, n * in_flight + k))
               for n, a in enumerate(addresses) for k in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked[0], time.monotonic() - t0, lat


def offered_load(address: str, requests: list[bytes], rate: float, seconds: float, threads: int = 32):
    """Open loop: send a request every 1000/rate seconds whether or not earlier ones are done
    (as a fleet of agents does). Latency counts from when a request was due, so a server that
    falls behind is not flattered (no coordinated omission). Returns (spans/s offered, spans/s
    acknowledged, sorted latencies in ms of acknowledged requests, refusals)."""
    interval = 1000.0 / rate
    pool = futures.ThreadPoolExecutor(threads)
    ch = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    call = ch.unary_unary(METHOD)
    lat: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def send(body: bytes, due: float) -> None:
        try:
            call(body, timeout=60)
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise
            with lock:
                refused[0] += 1
            return
        with lock:
            lat.append((time.perf_counter() - due) * 1000)
    start = time.perf_counter()
    sent = 0
    pending = []
    while sent * interval < seconds:
        due = start + sent * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        pending.append(pool.submit(send, requests[sent % len(requests)], due))
        sent += 1
    for f in pending:
        f.result()
    elapsed = time.perf_counter() - start
    pool.shutdown()
    ch.close()
    return sent * 1000 / seconds, len(lat) * 1000 / elapsed, sorted(lat), refused[0]


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


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU time of the server and its worker processes so far."""
    p = psutil.Process(proc.pid)
    return sum(sum(x.cpu_times()[:2]) for x in [p, *p.children(recursive=True)])


def fill(db: Path, upto: int, done: int = 0) -> None:
    """Add synthetic steps [done, upto) straight into the store file (bench/bigfile.py)."""
    with duckdb.connect(str(db)) as con:
        bigfile.fill(con, upto, done)


def ingest(db: Path, seconds: float, seed: int, offered=(), rounds: int = 1) -> dict:
    """Start `alephant-otel serve` on `db`, measure the closed-loop rate (4 requests in flight)
    `rounds` times, then latency at each offered rate (open loop); stop it with SIGTERM. Fresh
    span ids each time (requests are made from `seed` on)."""
    proc, address = start_server(db)
    stop, rss = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(proc, stop, rss))
    sampler.start()
    out: dict = {"offered": []}
    try:
        load(address, [make_request(seed - 1 - i) for i in range(4)], 0.01)  # warm up: workers start, imports load
        out["rates"], out["cpu"], lats = [], [], []
        for r in range(rounds):
            reqs = [make_request(seed + 10_000 * r + i) for i in range(int(seconds * 20))]
            cpu0 = cpu_seconds(proc)
            spans, elapsed, lat = load(address, reqs, seconds)
            out["rates"].append(spans / elapsed)
            out["cpu"].append((cpu_seconds(proc) - cpu0) / max(spans, 1) * 1e6)
            lats += lat
        out["rate"] = statistics.median(out["rates"]) if rounds else None
        out["lat"] = sorted(lats)
        for k, rate in enumerate(offered):
            reqs = [make_request(seed + 100_000 * (k + 1) + i) for i in range(int(seconds * rate / 1000) + 1)]
            out["offered"].append((rate, *offered_load(address, reqs, rate, seconds)))
    finally:
        stop.set()
        sampler.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    out["rss"] = rss[0]
    return out


def queries(db: Path) -> dict:
    """Warm query latencies (ms, median of 5) on the file, and its step count."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id = con.execute("SELECT run_id FROM _spans WHERE run_id IS NOT NULL LIMIT 1").fetchone()[0]
        return {
            "steps": con.execute("SELECT count(*) FROM _spans").fetchone()[0],
            "session": timed(con, "SELECT * FROM sessions ORDER BY cost DESC LIMIT 20"),
            "run": timed(con, "SELECT * FROM steps WHERE run_id = ? ORDER BY start_time", [run_id]),
            "daily": timed(con, "SELECT * FROM daily_costs"),
            "agent": timed(con, "SELECT * FROM agents"),
        }
    finally:
        con.close()


QUERY_NAMES = {"session": "cost by session", "run": "one run's step tree", "daily": "daily roll-up",
               "agent": "cost by agent"}


def pct(lat: list[float], p: float) -> float:
    return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="longer runs, plus the 1M/5M/10M-step growth curve")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of load per measurement")
    ap.add_argument("--prefill", type=int, default=0, metavar="N",
                    help="first fill the file with N synthetic steps (bench/bigfile.py) to measure ingest on a big store")
    ap.add_argument("--offered", type=float, action="append", metavar="SPANS_PER_S",
                    help="measure export latency at this offered load, open loop; repeatable "
                         "(default: 20,000 and half the measured rate)")
    ap.add_argument("--curve", default=None, metavar="N,N,...",
                    help="steps in the file at each point of the growth curve (--full: 1000000,5000000,10000000)")
    args = ap.parse_args()
    seconds = args.seconds or (60 if args.full else 10)
    requests = [make_request(i) for i in range(40 if args.full else 12)]
    rows = []

    ceiling = decode_only_ceiling(requests, min(seconds, 10))
    rows.append(("decode-only ceiling (spans/s)", f"{ceiling:,.0f}"))

    from alephant_otel.store import Store
    tmp = Path(tempfile.mkdtemp(prefix="alephant-bench-"))
    db = tmp / "bench.duckdb"
    Store(db).close()
    if args.prefill:
        fill(db, args.prefill)
        rows.append(("steps in the file before the load (synthetic)", f"{args.prefill:,}"))
    first = ingest(db, seconds, 1000, rounds=3)
    rate = first["rate"]
    second = ingest(db, seconds, 500_000, args.offered or [20_000.0, max(1000.0, round(rate / 2, -3))], rounds=0)
    rows += [
        ("ingest into DuckDB, acked after commit (spans/s; median of 3, min-max)",
         f"{rate:,.0f} ({min(first['rates']):,.0f}-{max(first['rates']):,.0f})"),
        ("ratio to decode-only ceiling", f"{rate / ceiling:.3f}"),
        ("server CPU per span, all its processes (us; median of 3) = spans per CPU-second",
         f"{statistics.median(first['cpu']):,.0f} = {1e6 / statistics.median(first['cpu']):,.0f}"),
        ("export latency p50 / p99 (ms; 4 x 1,000 spans in flight)",
         f"{pct(first['lat'], 0.5):,.0f} / {pct(first['lat'], 0.99):,.0f}"),
    ]
    for r, _sent, acked, lat, refused in second["offered"]:
        rows.append((f"offered {r:,.0f} spans/s: acked spans/s, p50 / p99 ms, refusals",
                     f"{acked:,.0f}, {pct(lat, 0.5):,.0f} / {pct(lat, 0.99):,.0f}, {refused}"))
    rows.append(("peak RSS of the server and its workers (MiB)", f"{max(first['rss'], second['rss']) / 2**20:,.0f}"))
    q = queries(db)
    n = q["steps"]
    if not args.prefill:
        size = sum(f.stat().st_size for f in tmp.iterdir() if f.name.startswith("bench.duckdb"))
        rows.append((f"bytes per step on disk ({n:,} steps, content not stored)", f"{size / max(n, 1):,.0f}"))
    rows += [(f"{QUERY_NAMES[k]} over {n:,} steps (ms)", f"{q[k]:,.1f}") for k in QUERY_NAMES]

    sizes = [int(float(x)) for x in args.curve.split(",")] if args.curve else (
        [1_000_000, 5_000_000, 10_000_000] if args.full else [])
    if sizes:
        curve_db = tmp / "curve.duckdb"
        Store(curve_db).close()
        done = 0
        for k, size_n in enumerate(sizes):
            fill(curve_db, size_n, done)
            done = size_n
            r = ingest(curve_db, seconds, 2_000_000 + k * 100_000)
            cq = queries(curve_db)
            rows.append((f"at {size_n:,} steps: ingest spans/s; session / run / daily / agent ms",
                         f"{r['rate']:,.0f}; " + " / ".join(f"{cq[x]:,.0f}" for x in QUERY_NAMES)))
    width = max(len(k) for k, _ in rows)
    print(f"\nalephant-otel benchmark ({'full' if args.full else 'quick'}; {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
