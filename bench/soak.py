#!/usr/bin/env python3
"""Soak `alephant-otel serve`: sustained OTLP load plus misbehaving clients, then a SIGTERM,
then an audit of the DuckDB file.

    python bench/soak.py --seconds 60
    python bench/soak.py --seconds 600 --rate 3000 --grpc-clients 3 --http-clients 3 --keep-db

What runs (all on 127.0.0.1, in threads of this process; the server is a subprocess):

* good clients (`--grpc-clients`, `--http-clients`): pre-serialized requests of
  `--spans-per-request` spans (default 500), sent at `--rate` spans/s in total, each retried
  until acknowledged on UNAVAILABLE / 503 (honouring RetryInfo / Retry-After, at most 1 s) and on
  connection errors;
* burst clients (`--burst-clients`): for `--burst-seconds` out of every `--burst-every`, more
  good clients send back to back, unthrottled, so that the write queue fills and exports are
  refused with UNAVAILABLE + RetryInfo / 503 + Retry-After (and retried);
* garbage: undecodable bodies over gRPC and HTTP (expects INVALID_ARGUMENT / 400);
* oversize: valid requests over `--max-request-bytes` (gRPC, HTTP with Content-Length, HTTP
  chunked; expects RESOURCE_EXHAUSTED / 413);
* partial: requests with some spans whose ids are unusable (expects OK with
  partial_success.rejected_spans = the bad ones; the others are stored);
* duplicator: sends every request twice, alternating transports (expects two acks, one copy);
* slow HTTP: trickles a body and finishes, trickles part of one and disconnects, or sends the
  headers only and disconnects.

The server's peak RSS (with its children) is sampled throughout. After `--seconds` the clients
stop (requests in flight may finish), the server gets SIGTERM (must exit 0), and the file is
opened read-only. Exit status: 0 when every acknowledged span is stored exactly once and no
client saw an unexpected answer; 1 otherwise (the reasons are printed).

Request ids are stamped into a pre-serialized template (fixed-size id fields), so building a
request costs a memory copy, not a protobuf serialization.
"""
from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import grpc
import psutil
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

CLI = str(Path(sys.executable).parent / "alephant-otel")
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"

# client kinds: the first byte of every span id they send (and of the trace id's 5th byte)
GOOD, DUP, PARTIAL, SLOW = 1, 2, 3, 4
KIND_NAMES = {GOOD: "good", DUP: "duplicator", PARTIAL: "partial", SLOW: "slow-http"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=180.0, help="how long the load is held (default 180)")
    p.add_argument("--rate", type=float, default=2500.0, help="target spans/s of the good clients together (default 2500)")
    p.add_argument("--grpc-clients", type=int, default=2, help="good gRPC clients (default 2)")
    p.add_argument("--http-clients", type=int, default=2, help="good HTTP clients (default 2)")
    p.add_argument("--spans-per-request", type=int, default=500)
    p.add_argument("--max-request-bytes", type=int, default=1024 * 1024,
                   help="passed to serve; the oversize client sends more (default 1 MiB)")
    p.add_argument("--max-queued-spans", type=int, default=4000,
                   help="passed to serve; small so that back-pressure (UNAVAILABLE/503) is exercised (default 4000)")
    p.add_argument("--burst-clients", type=int, default=4,
                   help="extra good clients (alternately gRPC and HTTP) that send back to back, unthrottled, "
                        "during bursts: the load spikes over what the server can take (default 4; 0: no bursts)")
    p.add_argument("--burst-every", type=float, default=30.0, help="a burst ends every this many seconds (default 30)")
    p.add_argument("--burst-seconds", type=float, default=5.0, help="how long a burst lasts (default 5)")
    p.add_argument("--no-misbehaving", action="store_true", help="good clients only")
    p.add_argument("--db", help="DuckDB file (default: a new file in a temporary directory)")
    p.add_argument("--keep-db", action="store_true", help="keep the temporary directory (file, server log)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain-seconds", type=float, default=30.0,
                   help="after the load, how long requests in flight may keep retrying (default 30)")
    args = p.parse_args(argv)
    if args.spans_per_request < 20 or args.spans_per_request > 6000:
        p.error("--spans-per-request must be in 20..6000")
    if args.grpc_clients + args.http_clients < 1:
        p.error("need at least one good client")
    return args


# -- pre-serialized requests with stamped ids --------------------------------------------------------
def _kv(key: str, value) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


class Template:
    """A serialized request whose ids are placeholders; `stamp` writes real ids in place.

    Spans are grouped in traces of `per_trace` spans: a root (invoke_agent) and children
    (alternately chat model calls with usage and tool calls). `bad` spans per request have
    unusable span ids (empty or all-zero) and must come back as partial-success rejections."""

    def __init__(self, nonce: bytes, n_spans: int, bad: int = 0, per_trace: int = 50, rng=None):
        rng = rng or random.Random()
        self.nonce = nonce
        now = time.time_ns()
        self.traces: list[list[int]] = []  # per trace: the indexes of its valid spans
        self.bad = bad
        spans = []
        trace_ph: list[bytes] = []
        span_ph: dict[tuple[int, int], bytes] = {}
        good = n_spans - bad
        for t in range((good + per_trace - 1) // per_trace):
            tph = rng.randbytes(16)
            trace_ph.append(tph)
            members = list(range(t * per_trace, min(good, (t + 1) * per_trace)))
            self.traces.append([i - t * per_trace for i in members])
            root = None
            for j, _ in enumerate(members):
                sph = rng.randbytes(8)
                span_ph[(t, j)] = sph
                if j == 0:
                    root = sph
                    spans.append(Span(trace_id=tph, span_id=sph, name="agent run", kind=Span.SPAN_KIND_INTERNAL,
                                      start_time_unix_nano=now, end_time_unix_nano=now + 9_000_000,
                                      attributes=[_kv("gen_ai.operation.name", "invoke_agent"),
                                                  _kv("gen_ai.agent.name", "soak-agent"),
                                                  _kv("alephant.session.id", f"soak-{t % 7}")]))
                    continue
                attrs = ([_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
                          _kv("gen_ai.request.model", "gpt-4o-mini"), _kv("gen_ai.usage.input_tokens", 1200 + j),
                          _kv("gen_ai.usage.output_tokens", 150), _kv("gen_ai.usage.cache_read.input_tokens", 200)]
                         if j % 2 else
                         [_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", "web_search"),
                          _kv("http.request.method", "GET")])
                spans.append(Span(trace_id=tph, span_id=sph, parent_span_id=root, name=f"step {j}",
                                  kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now + j * 1000,
                                  end_time_unix_nano=now + j * 1000 + 500_000, attributes=attrs))
        for b in range(bad):  # in the first trace, with ids no one can store
            spans.append(Span(trace_id=trace_ph[0], span_id=b"" if b % 2 else b"\x00" * 8, name=f"bad id {b}",
                              start_time_unix_nano=now, end_time_unix_nano=now + 1))
        req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource={"attributes": [_kv("service.name", "soak"), _kv("alephant.workspace.id", "ws_soak")]},
            scope_spans=[ScopeSpans(scope={"name": "soak", "version": "1"}, spans=spans)])])
        self.blob = req.SerializeToString()
        # where each placeholder sits in the bytes (trace ids: once per span of the trace;
        # root span ids: as span_id and as every child's parent_span_id)
        self.slots: list[tuple[int, int, list[int]]] = []  # (what, index, offsets); what 0=trace, 1=span
        taken: set[int] = set()
        for t, tph in enumerate(trace_ph):
            offs = [m.start() for m in re.finditer(re.escape(tph), self.blob)]
            expected = len(self.traces[t]) + (bad if t == 0 else 0)
            assert len(offs) == expected, f"trace placeholder found {len(offs)} times, expected {expected}"
            self.slots.append((0, t, offs))
            taken.update(offs)
        for (t, j), sph in span_ph.items():
            offs = [m.start() for m in re.finditer(re.escape(sph), self.blob)]
            expected = 1 + (len(self.traces[t]) - 1 if j == 0 else 0)
            assert len(offs) == expected, f"span placeholder found {len(offs)} times, expected {expected}"
            assert not taken.intersection(offs)
            self.slots.append((1, t * 65536 + j, offs))
        self.n_valid = good

    def trace_id(self, kind: int, client: int, req: int, t: int) -> bytes:
        return self.nonce + bytes([kind, client]) + req.to_bytes(4, "big") + t.to_bytes(2, "big") + b"\x00\x00\x00\x01"

    @staticmethod
    def span_id(kind: int, client: int, req: int, t: int, j: int) -> bytes:
        return bytes([kind, client]) + req.to_bytes(4, "big") + (t * 512 + j).to_bytes(2, "big")

    def stamp(self, kind: int, client: int, req: int) -> bytes:
        buf = bytearray(self.blob)
        for what, idx, offs in self.slots:
            if what == 0:
                new, n = self.trace_id(kind, client, req, idx), 16
            else:
                t, j = divmod(idx, 65536)
                new, n = self.span_id(kind, client, req, t, j), 8
            for o in offs:
                buf[o:o + n] = new
        return bytes(buf)

    def keys(self, kind: int, client: int, req: int) -> list[tuple[str, str]]:
        return [(self.trace_id(kind, client, req, t).hex(), self.span_id(kind, client, req, t, j).hex())
                for t, members in enumerate(self.traces) for j in members]

    def check(self) -> None:
        """Parse a stamped request back and compare its ids with `keys` (a self-test)."""
        req = ExportTraceServiceRequest.FromString(self.stamp(GOOD, 7, 12345))
        got = [(s.trace_id.hex(), s.span_id.hex()) for rs in req.resource_spans for ss in rs.scope_spans
               for s in ss.spans if len(s.span_id) == 8 and any(s.span_id)]
        assert got == self.keys(GOOD, 7, 12345), "stamping does not produce the expected ids"
        assert len(self.traces) < 128  # span ids hold t * 512 + j in two bytes


# -- the server process -----------------------------------------------------------------------------
class ServeProcess:
    def __init__(self, db: Path, log: Path, extra: list[str]):
        self.db, self.log, self.extra = db, log, extra
        self.proc: subprocess.Popen | None = None
        self.grpc_port = self.http_port = None

    def start(self, timeout: float = 60.0) -> "ServeProcess":
        with open(self.log, "a") as err:
            self.proc = subprocess.Popen([CLI, "serve", "--db", str(self.db), "--grpc-port", "0", "--http-port", "0",
                                          *self.extra], stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, text=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda out: [lines.put(x) for x in out], args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while self.grpc_port is None or self.http_port is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                sys.exit(f"serve did not print its ports within {timeout}s; see {self.log}")
            if m := re.search(r"OTLP/gRPC listening on 127\.0\.0\.1:(\d+)", line):
                self.grpc_port = int(m.group(1))
            if m := re.search(r"OTLP/HTTP listening on http://127\.0\.0\.1:(\d+)/v1/traces", line):
                self.http_port = int(m.group(1))
        return self


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(name="rss", daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.stop = threading.Event()
        self.peak = self.first = self.last = 0

    def sample(self) -> int:
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return 0

    def run(self) -> None:
        while not self.stop.is_set():
            rss = self.sample()
            if rss:
                self.first = self.first or rss
                self.last = rss
                self.peak = max(self.peak, rss)
            self.stop.wait(self.interval)


# -- bookkeeping ------------------------------------------------------------------------------------
@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter = field(default_factory=Counter)  # (client kind, transport, outcome) -> n
    sent: set = field(default_factory=set)  # (kind, client, req) of requests tried at least once
    acked: set = field(default_factory=set)  # (kind, client, req) acknowledged at least once
    acked_spans: int = 0  # valid spans in acknowledged requests (counting a request once)
    dup_acks: int = 0  # second acknowledgements of the same request
    rejected_reported: int = 0  # partial_success.rejected_spans summed
    rejected_expected: int = 0
    latency: list = field(default_factory=list)  # seconds, per acknowledged attempt (good clients)
    e2e: list = field(default_factory=list)  # seconds, first attempt to ack incl. retries (good clients)
    unexpected: list = field(default_factory=list)
    slow: Counter = field(default_factory=Counter)

    def answer(self, kind: str, transport: str, outcome: str) -> None:
        with self.lock:
            self.answers[(kind, transport, outcome)] += 1

    def bad(self, what: str) -> None:
        with self.lock:
            self.unexpected.append(what)


def grpc_retry_delay(exc: grpc.RpcError) -> float | None:
    try:
        status = rpc_status.from_call(exc)
    except Exception:  # noqa: BLE001 - a malformed status is itself worth a note, not a crash
        return None
    for d in status.details if status else ():
        if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            d.Unpack(info)
            return info.retry_delay.ToMilliseconds() / 1000
    return None


class Transport:
    """One client's connection (a gRPC channel or a keep-alive HTTP connection). `send`
    returns (outcome, response or None, retry delay or None)."""

    def __init__(self, kind: str, grpc_port: int, http_port: int, timeout: float = 30.0):
        self.kind, self.grpc_port, self.http_port, self.timeout = kind, grpc_port, http_port, timeout
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}") if kind == "grpc" else None
        self.conn: http.client.HTTPConnection | None = None

    def send(self, body, content_type: str = PROTOBUF, chunked: bool = False):
        return self._grpc(body) if self.kind == "grpc" else self._http(body, content_type, chunked)

    def _grpc(self, body: bytes):
        try:
            return "OK", ExportTraceServiceResponse.FromString(self.channel.unary_unary(EXPORT)(body, timeout=self.timeout)), None
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                delay = grpc_retry_delay(exc)
                return ("UNAVAILABLE+RetryInfo" if delay is not None else "UNAVAILABLE (no RetryInfo)"), None, delay
            return code.name, None, None

    def _http(self, body, content_type: str, chunked: bool):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=self.timeout)
        try:
            if chunked:
                self.conn.request("POST", "/v1/traces", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                                  headers={"Content-Type": content_type}, encode_chunked=True)
            else:
                self.conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type})
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return f"connection error ({type(exc).__name__})", None, None
        if resp.status == 200:
            try:
                return "200", ExportTraceServiceResponse.FromString(data) if content_type == PROTOBUF else None, None
            except Exception:  # noqa: BLE001
                return "200 with an undecodable body", None, None
        if resp.status == 503:
            ra = resp.getheader("Retry-After")
            return ("503+Retry-After" if ra else "503 (no Retry-After)"), None, float(ra) if ra else None
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return str(resp.status), None, None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def shutdown(self) -> None:
        self.close()
        if self.channel is not None:
            self.channel.close()


ACK = {"OK", "200"}
RETRY = {"UNAVAILABLE+RetryInfo", "503+Retry-After", "DEADLINE_EXCEEDED"}


class Soak:
    def __init__(self, args, server: ServeProcess, nonce: bytes):
        self.args, self.server = args, server
        self.stats = Stats()
        self.stop = threading.Event()  # no new requests
        self.hard_stop = threading.Event()  # give up on requests in flight too
        self.rng = random.Random(args.seed)
        self.tpl = Template(nonce, args.spans_per_request, rng=self.rng)
        self.tpl.check()
        self.tpl_partial = Template(nonce, args.spans_per_request, bad=10, rng=self.rng)
        self.tpl_partial.check()
        self.templates = {GOOD: self.tpl, DUP: self.tpl, SLOW: self.tpl, PARTIAL: self.tpl_partial}
        self.threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def transport(self, kind: str) -> Transport:
        return Transport(kind, self.server.grpc_port, self.server.http_port)

    # -- delivering one request until it is acknowledged -----------------------------------------
    def deliver(self, who: str, t: Transport, kind: int, client: int, req: int, body: bytes, measure: bool) -> bool:
        tpl = self.templates[kind]
        with self.stats.lock:
            self.stats.sent.add((kind, client, req))
        first = time.monotonic()
        for attempt in range(10_000):
            if self.hard_stop.is_set():
                return False
            start = time.monotonic()
            outcome, resp, delay = t.send(body)
            took = time.monotonic() - start
            self.stats.answer(who, t.kind, outcome)
            if outcome in ACK:
                rejected = resp.partial_success.rejected_spans if resp is not None else 0
                with self.stats.lock:
                    if (kind, client, req) in self.stats.acked:
                        self.stats.dup_acks += 1
                    else:
                        self.stats.acked.add((kind, client, req))
                        self.stats.acked_spans += tpl.n_valid
                    self.stats.rejected_reported += rejected
                    self.stats.rejected_expected += tpl.bad
                    if measure:
                        self.stats.latency.append(took)
                        self.stats.e2e.append(time.monotonic() - first)
                if rejected != tpl.bad:
                    self.stats.bad(f"{who}/{t.kind}: partial_success.rejected_spans={rejected}, expected {tpl.bad}")
                return True
            if outcome in RETRY or outcome.startswith("connection error"):
                self.hard_stop.wait(min(delay or 0.05, 1.0) * (0.5 + random.random()))
                continue
            self.stats.bad(f"{who}/{t.kind}: a valid request was answered {outcome}")
            return False
        return False

    # -- clients ---------------------------------------------------------------------------------
    def good_client(self, client: int, transport: str, rate_spans: float) -> None:
        t = self.transport(transport)
        interval = self.args.spans_per_request / rate_spans
        nxt = time.monotonic()
        req = 0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now < nxt:
                    self.stop.wait(nxt - now)
                    continue
                nxt = max(nxt + interval, now - interval)  # a late client catches up by one, not a burst
                body = self.tpl.stamp(GOOD, client, req)
                self.deliver("good", t, GOOD, client, req, body, measure=True)
                req += 1
        finally:
            t.shutdown()

    def burst_client(self, client: int, transport: str) -> None:
        a = self.args
        t = self.transport(transport)
        req = 0
        try:
            while not self.stop.is_set():
                phase = (time.monotonic() - self.t0) % a.burst_every
                if phase < a.burst_every - a.burst_seconds:
                    self.stop.wait(min(0.2, a.burst_every - a.burst_seconds - phase))
                    continue
                self.deliver("burst", t, GOOD, client, req, self.tpl.stamp(GOOD, client, req), measure=False)
                req += 1
        finally:
            t.shutdown()

    def duplicator(self, client: int) -> None:
        ts = [self.transport("grpc"), self.transport("http")]
        req = 0
        try:
            while not self.stop.wait(1.0):
                body = self.tpl.stamp(DUP, client, req)
                if self.deliver("duplicator", ts[req % 2], DUP, client, req, body, measure=False):
                    self.deliver("duplicator", ts[(req + 1) % 2], DUP, client, req, body, measure=False)
                req += 1
        finally:
            for t in ts:
                t.shutdown()

    def partial(self, client: int) -> None:
        ts = [self.transport("grpc"), self.transport("http")]
        req = 0
        try:
            while not self.stop.wait(1.0):
                self.deliver("partial", ts[req % 2], PARTIAL, client, req,
                             self.tpl_partial.stamp(PARTIAL, client, req), measure=False)
                req += 1
        finally:
            for t in ts:
                t.shutdown()

    def garbage(self) -> None:
        ts = [self.transport("grpc"), self.transport("http")]
        valid = self.tpl.stamp(GOOD, 255, 0)  # never sent whole
        rng = random.Random(self.args.seed + 1)
        n = 0
        try:
            while not self.stop.wait(0.3):
                t = ts[n % 2]
                variant = (n // 2) % 3
                if variant == 0:
                    body, ctype = b"\xff\xff\xff\xff" + rng.randbytes(rng.randint(10, 5000)), PROTOBUF
                elif variant == 1:  # a real request cut in the middle of a span
                    body, ctype = valid[:rng.randint(len(valid) // 4, len(valid) - 40)], PROTOBUF
                else:
                    body, ctype = b'{"resourceSpans": [ not json', "application/json"
                    if t.kind == "grpc":
                        body = b"\x0a\xff\xff\xff\xff\x0f"  # a length that runs past the end
                outcome, _, _ = t.send(body, ctype)
                self.stats.answer("garbage", t.kind, outcome)
                if outcome not in ("INVALID_ARGUMENT", "400"):
                    self.stats.bad(f"garbage/{t.kind} variant {variant}: answered {outcome}")
                n += 1
        finally:
            for t in ts:
                t.shutdown()

    def oversize(self) -> None:
        limit = self.args.max_request_bytes
        big = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[
            Span(trace_id=b"\xee" * 16, span_id=b"\xee" * 8, name="too big",
                 attributes=[_kv("blob", "x" * (limit + limit // 3))])])])]).SerializeToString()
        ts = [self.transport("grpc"), self.transport("http"), self.transport("http")]
        n = 0
        try:
            while not self.stop.wait(1.0):
                t = ts[n % 3]
                chunked = n % 3 == 2
                outcome, _, _ = t.send(big, chunked=chunked)
                label = "http chunked" if chunked else t.kind
                self.stats.answer("oversize", label, outcome)
                if outcome not in ("RESOURCE_EXHAUSTED", "413"):
                    self.stats.bad(f"oversize/{label}: answered {outcome}")
                n += 1
        finally:
            for t in ts:
                t.shutdown()

    def slow_http(self, client: int) -> None:
        rng = random.Random(self.args.seed + 2)
        req = 0
        port = self.server.http_port
        while not self.stop.wait(0.2):
            mode = req % 3
            body = self.tpl.stamp(SLOW, client, req)
            head = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {PROTOBUF}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError as exc:
                self.stats.slow[f"connect failed ({type(exc).__name__})"] += 1
                req += 1
                continue
            try:
                if mode == 0:  # the whole body, slowly (about 1.5 s): must be acknowledged
                    with self.stats.lock:
                        self.stats.sent.add((SLOW, client, req))
                    s.sendall(head)
                    step = len(body) // 30 + 1
                    for i in range(0, len(body), step):
                        s.sendall(body[i:i + step])
                        time.sleep(0.05)
                    status = self._read_status(s)
                    self.stats.answer("slow-http", "http", f"complete: {status}")
                    if status == "200":
                        with self.stats.lock:
                            self.stats.acked.add((SLOW, client, req))
                            self.stats.acked_spans += self.tpl.n_valid
                        self.stats.slow["whole body, acked"] += 1
                    elif status.startswith("503"):
                        self.stats.slow["whole body, 503 (not retried)"] += 1
                    else:
                        self.stats.bad(f"slow-http: a complete, valid request was answered {status}")
                elif mode == 1:  # part of the body, then an abrupt close (RST)
                    s.sendall(head)
                    cut = rng.randint(1, len(body) - 1)
                    step = cut // 10 + 1
                    for i in range(0, cut, step):
                        s.sendall(body[i:min(cut, i + step)])
                        time.sleep(0.05)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.stats.slow["cut mid-body"] += 1
                else:  # headers only, a pause, then a close
                    s.sendall(head)
                    time.sleep(0.5)
                    self.stats.slow["headers only"] += 1
            except OSError as exc:
                self.stats.slow[f"socket error ({type(exc).__name__})"] += 1
            finally:
                s.close()
            req += 1

    @staticmethod
    def _read_status(s: socket.socket) -> str:
        data = b""
        try:
            while b"\r\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            return f"connection error ({type(exc).__name__})"
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return m.group(1).decode() if m else f"no status line ({data[:40]!r})"

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        a = self.args
        self.t0 = time.monotonic()
        n_good = a.grpc_clients + a.http_clients
        per = a.rate / n_good
        for i in range(n_good):
            kind = "grpc" if i < a.grpc_clients else "http"
            self.threads.append(threading.Thread(target=self.good_client, args=(i, kind, per), name=f"good-{i}-{kind}"))
        for i in range(a.burst_clients):
            kind = "grpc" if i % 2 == 0 else "http"
            self.threads.append(threading.Thread(target=self.burst_client, args=(100 + i, kind), name=f"burst-{i}-{kind}"))
        if not a.no_misbehaving:
            self.threads += [threading.Thread(target=self.garbage, name="garbage"),
                             threading.Thread(target=self.oversize, name="oversize"),
                             threading.Thread(target=self.partial, args=(0,), name="partial"),
                             threading.Thread(target=self.duplicator, args=(0,), name="duplicator"),
                             threading.Thread(target=self.slow_http, args=(0,), name="slow-http")]
        for th in self.threads:
            th.daemon = True
            th.start()

    def finish(self, drain_seconds: float) -> list[str]:
        self.stop.set()
        deadline = time.monotonic() + drain_seconds
        for th in self.threads:
            th.join(timeout=max(0.1, deadline - time.monotonic()))
        self.hard_stop.set()
        for th in self.threads:
            th.join(timeout=10)
        return [th.name for th in self.threads if th.is_alive()]


# -- report -----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def mib(v: int) -> str:
    return f"{v / 2**20:.0f} MiB"


def table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    line = "+" + "-" * (w + 2) + "+" + "-" * (max(len(v) for _, v in rows) + 2) + "+"
    out = [line]
    for k, v in rows:
        if k == "--":
            out.append(line)
        else:
            out.append(f"| {k.ljust(w)} | {v.ljust(len(line) - w - 6)} |")
    out.append(line)
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="alephant-soak-"))
    db = Path(args.db) if args.db else tmp / "soak.duckdb"
    log = tmp / "serve.stderr"
    nonce = os.urandom(4)
    server = ServeProcess(db, log, ["--max-request-bytes", str(args.max_request_bytes),
                                    "--max-queued-spans", str(args.max_queued_spans)]).start()
    rss = RssSampler(server.proc.pid)
    rss.start()
    soak = Soak(args, server, nonce)
    print(f"soak: serve pid {server.proc.pid}, gRPC :{server.grpc_port}, HTTP :{server.http_port}, db {db}, "
          f"{args.seconds:.0f} s at {args.rate:.0f} spans/s target", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    soak.start()
    crashed = None
    last_print = t0
    while time.monotonic() - t0 < args.seconds:
        time.sleep(min(1.0, max(0.01, args.seconds - (time.monotonic() - t0))))
        if server.proc.poll() is not None:
            crashed = server.proc.returncode
            break
        if time.monotonic() - last_print >= 10:
            last_print = time.monotonic()
            el = last_print - t0
            print(f"  t={el:5.0f}s acked {soak.stats.acked_spans} spans ({soak.stats.acked_spans / el:.0f}/s), "
                  f"rss {mib(rss.last)} (peak {mib(rss.peak)}), unexpected {len(soak.stats.unexpected)}",
                  file=sys.stderr, flush=True)
    load_seconds = time.monotonic() - t0
    stuck = soak.finish(args.drain_seconds)
    failures: list[str] = []
    if crashed is not None:
        failures.append(f"the server exited with {crashed} during the load (see {log})")
    if stuck:
        failures.append(f"client threads still running after the drain: {stuck}")
    # SIGTERM: must drain and exit 0
    term_start = time.monotonic()
    rc = server.proc.poll()
    if rc is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            rc = server.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            rc = server.proc.wait(timeout=30)
            failures.append("the server did not exit within 90 s of SIGTERM (killed)")
        if rc != 0:
            failures.append(f"SIGTERM exit status {rc} (see {log})")
    term_seconds = time.monotonic() - term_start
    rss.stop.set()
    rss.join(timeout=5)
    st = soak.stats

    # audit the file
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        failures.append(f"the DuckDB file does not open read-only: {exc}")
        con = None
    stored_rows = stored_distinct = rejected_rows = 0
    missing: list = []
    unknown = stored_unacked = 0
    if con is not None:
        stored_rows, stored_distinct = con.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM steps").fetchone()
        stored = set(con.execute("SELECT trace_id, span_id FROM steps").fetchall())
        rejected_rows = con.execute("SELECT count(*) FROM _rejected_spans").fetchone()[0]
        con.close()
        acked_keys: set = set()
        sent_keys: set = set()
        for kind, client, req in st.sent:
            ks = soak.templates[kind].keys(kind, client, req)
            sent_keys.update(ks)
            if (kind, client, req) in st.acked:
                acked_keys.update(ks)
        missing = sorted(acked_keys - stored)
        unknown = len(stored - sent_keys)
        stored_unacked = len(stored - acked_keys)
        if missing:
            failures.append(f"{len(missing)} acknowledged spans are not in the file, e.g. {missing[:3]}")
        if stored_rows != stored_distinct:
            failures.append(f"{stored_rows - stored_distinct} duplicate rows in steps")
        if unknown:
            failures.append(f"{unknown} stored spans were never sent by a client that expects them stored")
    else:
        acked_keys, sent_keys = set(), set()
    if st.unexpected:
        c = Counter(st.unexpected)
        failures.append(f"{len(st.unexpected)} unexpected answers: " + "; ".join(f"{k} (x{n})" for k, n in c.most_common(8)))
    if st.rejected_reported != st.rejected_expected:
        failures.append(f"partial success reported {st.rejected_reported} rejected spans, expected {st.rejected_expected}")
    errors_logged = [ln for ln in log.read_text(errors="replace").splitlines() if " ERROR " in ln] if log.exists() else []

    # the table
    def n(kind_filter=None, transport=None, outcome=None) -> int:
        return sum(v for (k, t, o), v in st.answers.items()
                   if (kind_filter is None or k == kind_filter) and (transport is None or t == transport)
                   and (outcome is None or o == outcome))

    good_clients = args.grpc_clients + args.http_clients
    rows = [
        ("duration of the load", f"{load_seconds:.0f} s (target {args.rate:.0f} spans/s from {good_clients} good clients: "
                                 f"{args.grpc_clients} gRPC, {args.http_clients} HTTP; {args.spans_per_request} spans/request)"),
        ("bursts", f"{args.burst_clients} more clients unthrottled for {args.burst_seconds:.0f} s of every {args.burst_every:.0f} s"
                   if args.burst_clients else "none"),
        ("--", ""),
        ("spans sent (valid ids, all clients)", f"{len(sent_keys)} in {len(st.sent)} requests"),
        ("spans acknowledged", f"{len(acked_keys)} in {len(st.acked)} requests"),
        ("spans stored (steps, after SIGTERM)", f"{stored_rows}"),
        ("acknowledged but missing", f"{len(missing)}"),
        ("duplicates stored", f"{stored_rows - stored_distinct}"),
        ("stored but never acknowledged", f"{stored_unacked} (sent; the answer was not awaited or lost)"),
        ("repeat sends acknowledged (duplicator)", f"{st.dup_acks}"),
        ("rejected spans (partial success)", f"{st.rejected_reported} reported (expected {st.rejected_expected}); "
                                             f"{rejected_rows} rows in _rejected_spans"),
        ("--", ""),
        ("refusals: gRPC UNAVAILABLE + RetryInfo", f"{n(transport='grpc', outcome='UNAVAILABLE+RetryInfo')}"),
        ("refusals: HTTP 503 + Retry-After", f"{n(transport='http', outcome='503+Retry-After')}"),
        ("refusals: gRPC/HTTP retry signal missing", f"{n(outcome='UNAVAILABLE (no RetryInfo)') + n(outcome='503 (no Retry-After)')}"),
        ("refusals: HTTP 413 (oversize)", f"{n('oversize', outcome='413')} "
                                          f"(content-length {n('oversize', 'http', '413')}, chunked {n('oversize', 'http chunked', '413')})"),
        ("refusals: gRPC RESOURCE_EXHAUSTED", f"{n(outcome='RESOURCE_EXHAUSTED')}"),
        ("refusals: HTTP 400 (garbage)", f"{n(outcome='400')}"),
        ("refusals: gRPC INVALID_ARGUMENT", f"{n(outcome='INVALID_ARGUMENT')}"),
        ("connection errors (retried)", f"{sum(v for (k, t, o), v in st.answers.items() if o.startswith('connection error'))}"),
        ("gRPC DEADLINE_EXCEEDED (retried)", f"{n(outcome='DEADLINE_EXCEEDED')}"),
        ("slow HTTP clients", ", ".join(f"{k}: {v}" for k, v in sorted(st.slow.items())) or "-"),
        ("unexpected answers", f"{len(st.unexpected)}"),
        ("--", ""),
        ("achieved spans/s (acked / load time)", f"{len(acked_keys) / load_seconds:.0f}"),
        ("export latency p50 / p99 (acked call)", f"{ms(pct(st.latency, 0.5))} / {ms(pct(st.latency, 0.99))}"
                                                  f" over {len(st.latency)} requests of the steady good clients"),
        ("ack latency incl. retries p50 / p99", f"{ms(pct(st.e2e, 0.5))} / {ms(pct(st.e2e, 0.99))}"),
        ("peak RSS of serve (+children)", f"{mib(rss.peak)} (first sample {mib(rss.first)}, last {mib(rss.last)})"),
        ("SIGTERM", f"exit {rc} after {term_seconds:.1f} s"),
        ("server ERROR log lines", f"{len(errors_logged)}"),
        ("--", ""),
        ("RESULT", "PASS" if not failures else "FAIL"),
    ]
    print(table(rows))
    if errors_logged:
        kinds = Counter(re.sub(r"^\S+ \S+ ", "", ln)[:120] for ln in errors_logged)
        print("server errors logged (first words, count):")
        for k, v in kinds.most_common(5):
            print(f"  {v:6d}  {k}")
    for f in failures:
        print(f"FAIL: {f}")
    if args.keep_db or failures:
        print(f"kept: {tmp} (db {db}, server log {log})")
    else:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
