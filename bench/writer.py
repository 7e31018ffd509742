"""The writer alone (no transport, no mapping): CPU per stored step when every export brings new
traces, and when traces continue across exports, as they do when an agent's spans end (and are
exported) before their run's root span.

    python bench/writer.py [--writes N] [--steps-per-write N]

`new`: each write holds whole traces never seen before (bench/run.py's workload).
`split`: each write holds the children of new traces and the roots of the previous write's:
every root arrives after its children, so each write adopts the previous write's orphans,
re-resolves them (their run context comes from the root) and updates their rows.
Each case runs twice: with plain steps (`Writer.write(steps)`, the library's path) and with the
steps prepared as `serve`'s mapping workers prepare them (`store/rows.py`: whole traces resolved
and turned into Arrow before the writer; that CPU is the worker's and is printed apart).
Prints the median CPU microseconds per stored step over the second half of the writes. The
garbage collector is tuned as in `serve` (receiver/gc_tuning.py): with CPython's defaults the
continued traces cost ~10 us per step more here than they do in the server.
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from alephant_otel import wire  # noqa: E402
from alephant_otel.mapping import map_request  # noqa: E402
from alephant_otel.pricing import price_steps  # noqa: E402
from alephant_otel.receiver import gc_tuning  # noqa: E402
from alephant_otel.store.database import open_for_writing  # noqa: E402
from alephant_otel.store.rows import prepare  # noqa: E402
from alephant_otel.store.writer import Writer  # noqa: E402
from workload import make_request  # noqa: E402


def batches(n: int, size: int, split: bool):
    """`n` lists of about `size` mapped steps, with trace ids drawn afresh."""
    rng = random.Random(7)
    templates = [map_request(wire.parse(make_request(s))).steps for s in range(8)]
    for steps in templates:
        price_steps(steps)
    pool = [s for t in templates for s in t]
    held: list[dict] = []
    for i in range(n):
        start = (i * size) % len(pool)
        steps = copy.deepcopy(pool[start:start + size])
        ids: dict[str, str] = {}
        for s in steps:
            s["trace_id"] = ids.setdefault(s["trace_id"], "%032x" % rng.getrandbits(128))
        if split:
            roots = [s for s in steps if s["parent_span_id"] is None]
            yield [s for s in steps if s["parent_span_id"] is not None] + held
            held = roots
        else:
            yield steps


def measure(n: int, size: int, split: bool, prepared: bool) -> tuple[float, float, int]:
    """(writer CPU us per step, preparing CPU us per step, steps stored): medians of the last
    half of `n` writes."""
    con = open_for_writing(Path(tempfile.mkdtemp(prefix="alephant-writer-")) / "w.duckdb")
    con.execute("SET threads = 1")  # as `serve` runs it with its default workers on 2 cores
    writer = Writer(con)
    costs, prep = [], []
    for steps in batches(n, size, split):
        c0 = time.process_time()
        ready, rest = prepare(steps) if prepared else (None, steps)
        c1 = time.process_time()
        writer.write(rest, (), [ready])
        costs.append((time.process_time() - c1) / len(steps) * 1e6)
        prep.append((c1 - c0) / len(steps) * 1e6)
    stored = con.execute("SELECT count(*) FROM _spans").fetchone()[0]
    con.close()
    return statistics.median(costs[n // 2:]), statistics.median(prep[n // 2:]), stored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--steps-per-write", type=int, default=2000)
    args = ap.parse_args()
    gc_tuning.tune()  # the collector's settings of `serve` (and of its workers)
    for label, split in (("new traces in every write", False), ("traces continued across writes", True)):
        for prepared in (False, True):
            us, prep, stored = measure(args.writes, args.steps_per_write, split, prepared)
            how = f"prepared ({prep:4.1f} us in the worker)" if prepared else "as steps"
            print(f"{label:<31} {how:<33} writer: {us:6.1f} us of CPU per step (median of the last"
                  f" {args.writes - args.writes // 2} writes; {stored:,} steps stored)", flush=True)


if __name__ == "__main__":
    main()
