"""Three `alephant-otel serve` processes writing one DuckLake (real PostgreSQL catalog, Parquet
files), fed interleaved traffic for the same runs: each trace's spans are split over requests
sent to different receivers (children often land before their parents, on another receiver),
runs and sessions span traces, one request is sent to two receivers at once, and one receiver
is killed with SIGKILL mid-way; its unacknowledged requests are retried on the others. After
the background adoption settles, every public view equals the single-file store's fed the same
spans; after `maintain` too, with no duplicate copy left."""
from __future__ import annotations

import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

import postgres
from alephant_otel.store import Store
from lake_spans import Ids, agent_trace, request, steps_of
from test_ducklake import EXPORT, view_contents

pytestmark = [pytest.mark.skipif(postgres.MISSING is not None, reason=postgres.MISSING or ""),
              pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")]
CLI = str(Path(sys.executable).parent / "alephant-otel")
SEED = int(os.environ.get("LAKE_SEED", "20261122"))


class Receiver:
    def __init__(self, url: str, data: str, log: Path):
        with open(log, "a") as err:
            self.proc = subprocess.Popen(
                [CLI, "serve", "--store", url, "--data-path", data, "--grpc-port", "0", "--no-http", "--workers", "0"],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        self.log = log
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + 60
        self.address = None
        while self.address is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"serve did not start: {log.read_text()[-3000:]}") from None
            if m := re.search(r"OTLP/gRPC listening on (127\.0\.0\.1:\d+)", line):
                self.address = m.group(1)
        self.alive = True


def interleaved_requests(rng: random.Random, ids: Ids, runs: int = 9, traces_per_run: int = 8):
    """Requests of about 20 spans, each mixing chunks of several traces; every trace is split
    into three chunks that go to different requests (so to different receivers)."""
    chunks = []
    for r in range(runs):
        for _ in range(traces_per_run):
            spans = agent_trace(ids, f"run-{r}", f"sess-{r % 3}", f"agent-{r % 2}", calls=rng.randint(2, 6))
            rng.shuffle(spans)
            k = len(spans) // 3
            chunks += [spans[:k], spans[k:2 * k], spans[2 * k:]]
    rng.shuffle(chunks)
    reqs, cur = [], []
    for c in chunks:
        cur += c
        if len(cur) >= 20:
            reqs.append(request(cur))
            cur = []
    if cur:
        reqs.append(request(cur))
    return reqs


def send(address: str, req) -> bool:
    try:
        with grpc.insecure_channel(address) as ch:
            ch.unary_unary(EXPORT)(req.SerializeToString(), timeout=60)
        return True
    except grpc.RpcError:
        return False


def test_three_receivers_one_killed_equal_the_single_file_store(tmp_path):
    rng = random.Random(SEED)
    reqs = interleaved_requests(rng, Ids(SEED))
    with postgres.Postgres() as pg:
        url, data = pg.create_database("cluster"), str(tmp_path / "lake-data")
        Store(url, data).close()  # create the lake once (receivers starting together would race to)
        receivers = [Receiver(url, data, tmp_path / f"serve{i}.log") for i in range(3)]
        acked: set[int] = set()
        lock = threading.Lock()
        in_flight = [False] * 3
        errors: list[str] = []

        def client(i: int, mine: list[int]) -> None:
            todo = list(mine)
            while todo:
                n = todo[0]
                targets = [i] if receivers[i].alive else [j for j in range(3) if receivers[j].alive]
                target = targets[n % len(targets)]
                in_flight[i] = True
                ok = send(receivers[target].address, reqs[n])
                in_flight[i] = False
                if ok:
                    with lock:
                        acked.add(n)
                    todo.pop(0)
                elif receivers[target].alive and target != 1:
                    errors.append(f"receiver {target} refused request {n}")
                    return  # (only the killed one may fail)
        share = {i: [n for n in range(len(reqs)) if n % 3 == i] for i in range(3)}
        threads = [threading.Thread(target=client, args=(i, share[i]), daemon=True) for i in range(3)]
        try:
            for t in threads:
                t.start()
            dup = request(agent_trace(Ids(SEED + 1), "run-dup", "sess-dup", "agent-0"))
            both = [threading.Thread(target=send, args=(receivers[j].address, dup)) for j in (0, 2)]
            for t in both:
                t.start()
            deadline = time.monotonic() + 120
            while (len(acked) < len(reqs) // 3 or not in_flight[1]) and time.monotonic() < deadline:
                time.sleep(0.005)
            assert in_flight[1], "receiver 1 was never busy"
            receivers[1].proc.send_signal(signal.SIGKILL)  # mid-request: its client retries elsewhere
            receivers[1].proc.wait(timeout=30)
            receivers[1].alive = False
            killed_at = len(acked)
            for t in threads + both:
                t.join(timeout=300)
            assert not errors, errors
            assert acked == set(range(len(reqs))), f"{len(acked)} of {len(reqs)} acknowledged"

            with Store(tmp_path / "single.duckdb") as file:  # the same spans, one writer
                for r in reqs + [dup]:
                    file.write(steps_of(r))
                expected = view_contents(file)
            settled_by = time.monotonic() + 90  # the receivers' background adoption settles
            while True:
                with Store(url) as lake:
                    pending = lake.query("SELECT count(*) AS n FROM _orphans_pending").to_pylist()[0]["n"]
                    if pending == 0 or time.monotonic() > settled_by:
                        got = view_contents(lake)
                        copies = lake.query("SELECT count(*) - count(DISTINCT (trace_id, span_id)) AS n"
                                            " FROM _span_rows").to_pylist()[0]["n"]
                        break
                time.sleep(1)
            assert pending == 0, f"{pending} orphans not adopted"
            for name in expected:
                assert got[name] == expected[name], name
            for j in (0, 2):
                receivers[j].proc.send_signal(signal.SIGTERM)
                assert receivers[j].proc.wait(timeout=60) == 0, receivers[j].log.read_text()[-3000:]
            out = subprocess.run([CLI, "maintain", "--store", url, "--keep-snapshots", "0s"],
                                 capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            with Store(url) as lake:
                assert view_contents(lake) == expected
                assert lake.query("SELECT count(*) - count(DISTINCT (trace_id, span_id)) AS n FROM _span_rows"
                                  ).to_pylist()[0]["n"] == 0
            print(f"\n{len(reqs)} requests ({len(expected['steps'])} steps), receiver 1 killed after "
                  f"{killed_at} acknowledged; physical duplicate copies before "
                  f"maintain: {copies}\n{out.stdout}")
        finally:
            for r in receivers:
                if r.proc.poll() is None:
                    r.proc.kill()
                    r.proc.wait(timeout=30)
