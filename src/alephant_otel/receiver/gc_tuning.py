"""Garbage-collector settings for the processes we own (`serve` and its mapping workers).

Ingest allocates many short-lived containers per span (attribute dicts, step rows, context
tiers) while the writer keeps a cache of tens of thousands of chains. With CPython's default
thresholds (a young collection every 700 allocations) the collector runs thousands of times a
second and its older generations walk that cache again and again: about a third of the writer's
time in bench/run.py. Rows are freed by reference counting, not by the collector, so collecting
less often only delays freeing the rare reference cycle.
"""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython default: 700)


def tune() -> None:
    """Freeze what is alive now (modules, tables: never garbage) out of the collector's walks,
    and collect young objects less often. Call once a process has finished starting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
