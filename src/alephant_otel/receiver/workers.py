"""Mapping in worker processes: decode -> map -> price run outside the receiver's process, so
they use another core instead of competing with the transports and the writer for the GIL.

The receiver hands a worker the request's raw bytes and gets the mapped, priced batch back;
the single writer stays in the receiver's process.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from ..mapping import MappedBatch, map_request
from ..otlp import decode_json, decode_request
from ..pricing import price_steps

_OPTIONS: dict = {}


def _init(options: dict) -> None:
    _OPTIONS.update(options)


def map_bytes(data: bytes, codec: str, metadata, attribution) -> MappedBatch:
    """Decode, map and price one export request (runs in a worker process)."""
    request = decode_json(data) if codec == "json" else decode_request(data)
    batch = map_request(request, metadata, _OPTIONS.get("rules"), attribution, _OPTIONS.get("store_content", False))
    price_steps(batch.steps, _OPTIONS.get("cost_preference", "provided"), _OPTIONS.get("prices"))
    return batch


class MapperPool:
    def __init__(self, workers: int, **options):
        # forkserver: never fork a process that runs gRPC threads
        ctx = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(options,))
        self.workers = workers

    def map(self, data: bytes, codec: str, metadata, attribution) -> MappedBatch:
        md = [(str(k), v if isinstance(v, (str, bytes)) else str(v)) for k, v in (metadata or ())]
        return self._pool.submit(map_bytes, data, codec, md, attribution).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
