"""Mapping in worker processes: decode -> map -> price run outside the receiver's process, so
they use another core instead of competing with the transports and the writer for the GIL.

The receiver hands a worker the request's raw bytes and gets the mapped, priced batch back;
the single writer stays in the receiver's process.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from ..mapping import MappedBatch, map_protobuf, map_request
from ..otlp import decode_json
from ..pricing import price_steps
from ..store.rows import prepare
from . import gc_tuning

_OPTIONS: dict = {}


def _init(options: dict, receiver_pid: int) -> None:
    _OPTIONS.update(options)
    gc_tuning.tune()
    threading.Thread(target=_exit_with_receiver, args=(receiver_pid,), daemon=True).start()


def _exit_with_receiver(receiver_pid: int) -> None:
    """A worker whose receiver died (even by SIGKILL, which skips every cleanup) exits too."""
    while os.getppid() == receiver_pid:
        time.sleep(1.0)
    os._exit(0)


def map_decoded(request, metadata, attribution, rules=None, store_content: bool = False,
                cost_preference: str = "provided", prices=None) -> MappedBatch:
    """Map, price and prepare a decoded request: what the writer receives, in a worker or (with
    no workers) on the receiving thread. Prepared rows cross processes as Arrow."""
    return _priced(map_request(request, metadata, rules, attribution, store_content), cost_preference, prices)


def map_serialized(data: bytes, metadata, attribution, rules=None, store_content: bool = False,
                   cost_preference: str = "provided", prices=None) -> MappedBatch:
    """`map_decoded` of a serialized protobuf request (read in C when it can: map_protobuf)."""
    return _priced(map_protobuf(data, metadata, rules, attribution, store_content), cost_preference, prices)


def _priced(batch: MappedBatch, cost_preference: str, prices) -> MappedBatch:
    price_steps(batch.steps, cost_preference, prices)
    batch.ready, batch.steps = prepare(batch.steps)
    return batch


def map_bytes(data: bytes, codec: str, metadata, attribution) -> MappedBatch:
    """Decode, map, price and prepare one export request (runs in a worker process)."""
    options = (_OPTIONS.get("rules"), _OPTIONS.get("store_content", False),
               _OPTIONS.get("cost_preference", "provided"), _OPTIONS.get("prices"))
    if codec == "json":
        return map_decoded(decode_json(data), metadata, attribution, *options)
    return map_serialized(data, metadata, attribution, *options)


class MapperPool:
    def __init__(self, workers: int, **options):
        # spawn: never fork a process that runs gRPC threads; workers are the receiver's children
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                                         initargs=(options, os.getpid()))
        self.workers = workers

    def map(self, data: bytes, codec: str, metadata, attribution) -> MappedBatch:
        md = [(str(k), v if isinstance(v, (str, bytes)) else str(v)) for k, v in (metadata or ())]
        return self._pool.submit(map_bytes, data, codec, md, attribution).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
