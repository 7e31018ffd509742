"""The ingest path every transport shares: decode -> map -> price -> single writer -> ack.

Handlers call `Pipeline.export(bytes, metadata)` from their own threads; it returns only after
the spans are committed to the DuckDB file (an acknowledged export is durable). One writer
thread owns the write connection and commits whatever is queued in one transaction (group
commit), so concurrent exports share the cost of a commit.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from ..errors import AlephantError
from ..mapping import MappedBatch
from .. import wire
from ..otlp import decode_json
from ..store import Store, WriteResult
from .workers import map_decoded, map_serialized

log = logging.getLogger(__name__)


def count_spans(request) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class Overloaded(AlephantError):
    """The write queue is full: the client should retry later (after `retry_after` seconds)."""

    retry_after = 1.0


class StoreUnavailable(AlephantError):
    """The batch could not be committed: the client should retry."""


@dataclass
class ExportResult:
    accepted: int
    duplicates: int
    rejected: int
    error_message: str


class Pipeline:
    def __init__(self, store: Store, max_queued_spans: int = 25_000, max_group_spans: int = 50_000,
                 rules=None, cost_preference: str = "provided", prices=None,
                 store_content: bool = False, workers: int = 0):
        self.store = store
        self.workers = workers
        self._pool = None
        self.rules = rules
        self.cost_preference = cost_preference
        self.prices = prices
        self.store_content = store_content
        self.max_group_spans = max_group_spans
        self.max_queued_spans = max_queued_spans
        self._queue: queue.Queue = queue.Queue()
        self._queued_spans = 0  # spans mapped and waiting for the writer: bounds memory
        self._queued_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alephant-writer", daemon=True)
        self._stopping = False

    def start(self) -> "Pipeline":
        self._start_pool()
        self._thread.start()
        return self

    def _start_pool(self) -> None:
        if self.workers:
            from .workers import MapperPool
            self._pool = MapperPool(self.workers, rules=self.rules, prices=self.prices,
                                    cost_preference=self.cost_preference, store_content=self.store_content)

    def set_prices(self, prices) -> None:
        """Price what is received from now on with `prices` (worker processes are restarted)."""
        self.prices = prices
        if self._pool is not None:
            old = self._pool
            self._start_pool()
            old.shutdown()

    def map(self, request, metadata=None, attribution=None) -> MappedBatch:
        return map_decoded(request, metadata, attribution, self.rules, self.store_content,
                           self.cost_preference, self.prices)

    def export(self, data: bytes, metadata=None, codec: str = "protobuf", attribution=None,
               timeout: float | None = 120.0) -> ExportResult:
        """Decode, map and price (in a worker process when there are workers, else on the
        caller's thread); block until committed. Raises DecodeError (bad request), Overloaded
        (retry later) or StoreUnavailable (retry)."""
        if codec == "json":
            request = decode_json(data)
            if self._pool is None:
                return self.export_request(request, metadata, attribution, timeout)
            # The worker decodes the JSON again; the decoded request (several MB for 1,000
            # spans) is not kept while the export waits: memory follows the queue's bound.
            n = count_spans(request)
            del request
        elif self._pool is None:  # mapped on this thread, read in C when it can (map_protobuf)
            return self._write(wire.count_spans(data), lambda: map_serialized(
                data, metadata, attribution, self.rules, self.store_content, self.cost_preference, self.prices),
                timeout)
        else:
            # Admitted by its span count, read without decoding the spans; the worker parses
            # the bytes (a bad request fails there, before any of it is queued).
            n = wire.count_spans(data)
        return self._write(n, lambda: self._pool.map(data, codec, metadata, attribution), timeout)

    def export_request(self, request, metadata=None, attribution=None, timeout: float | None = 120.0) -> ExportResult:
        """Map a decoded request on the caller's thread; block until committed."""
        return self._write(count_spans(request), lambda: self.map(request, metadata, attribution), timeout)

    def _write(self, n: int, produce, timeout: float | None) -> ExportResult:
        """Admit `n` spans (or refuse before any work), map them with `produce()`, queue the
        batch for the writer and wait for its commit."""
        if n == 0:
            return ExportResult(0, 0, 0, "")
        with self._queued_lock:  # refuse before mapping: an overloaded server does no work
            if self._stopping:
                raise StoreUnavailable("the server is stopping; retry")
            if self._queued_spans and self._queued_spans + n > self.max_queued_spans:
                raise Overloaded(f"{self._queued_spans} spans are waiting to be written")
            self._queued_spans += n
        try:
            batch = produce()
            fut: Future = Future()
            self._queue.put((batch, fut))
            result = fut.result(timeout=timeout)
        finally:
            with self._queued_lock:
                self._queued_spans -= n
        return ExportResult(result.inserted, result.duplicates, batch.rejected_count,
                            batch.error_message() if batch.rejected_count else "")

    def run_in_writer(self, job, timeout: float | None = 600.0):
        """Run `job(store)` on the writer thread (the only one that may write) and return its
        result; used for maintenance such as repricing while serving."""
        fut: Future = Future()
        self._queue.put((job, fut))
        return fut.result(timeout=timeout)

    def stop(self, wait: float = 30.0) -> None:
        """Refuse new exports (with a retry signal), let those being mapped and written finish
        (up to `wait` seconds), write everything queued, then stop the writer thread. Exports
        still unwritten after that fail with a retry signal instead of hanging."""
        with self._queued_lock:
            self._stopping = True
        deadline = time.monotonic() + wait
        while self._queued_spans and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown()
        while True:  # anything enqueued after the writer stopped: answer, do not strand
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(StoreUnavailable("the server stopped before writing this batch; retry"))

    # -- writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if callable(item[0]):
                self._run_job(*item)
                continue
            group = [item]
            spans = item[0].size
            stop = False
            while spans < self.max_group_spans:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if callable(nxt[0]):
                    if group:
                        self._commit(group)
                    group, spans = [], 0
                    self._run_job(*nxt)
                    continue
                group.append(nxt)
                spans += nxt[0].size
            if group:
                self._commit(group)
            if stop:
                return

    def _run_job(self, job, fut: Future) -> None:
        try:
            fut.set_result(job(self.store))
        except Exception as exc:
            fut.set_exception(exc)

    def _commit(self, group) -> None:
        try:
            steps = [s for b, _ in group for s in b.steps]
            rejected = [r for b, _ in group for r in b.rejected]
            result = self.store.write(steps, rejected, [b.ready for b, _ in group])
        except Exception:
            if len(group) > 1:  # isolate the batch that fails; the others still commit
                for item in group:
                    self._commit([item])
                return
            log.exception("write failed")
            group[0][1].set_exception(StoreUnavailable("the batch could not be stored; retry"))
            return
        # Every step inserted (none stored before, no key twice in the group, the usual case):
        # each batch inserted all its keys. Otherwise a key counts for the first batch with it.
        if result.inserted == sum(b.size for b, _ in group):
            for b, fut in group:
                fut.set_result(WriteResult(b.size, 0, 0))
            return
        inserted = result.inserted_keys
        claimed: set = set()
        for b, fut in group:
            keys = {(s["trace_id"], s["span_id"]) for s in b.steps} | (b.ready.keys() if b.ready is not None else set())
            mine = (keys & inserted) - claimed
            claimed |= mine
            fut.set_result(WriteResult(len(mine), len(keys) - len(mine), 0, mine))
