"""OTLP/HTTP, back-pressure with retry signals, virtual keys and tenancy, content opt-in:
through the real servers with the official OTel exporters."""
from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel.receiver.server import Server
from alephant_otel.store import keys
from conftest import FIXTURES, Running, shutdown
from test_bad_input import request
from test_mapping import make_span


@pytest.fixture
def both(tmp_path):
    r = Running(tmp_path / "http.duckdb", http_port=0).start()
    yield r
    r.stop()


def http_url(r) -> str:
    return f"http://127.0.0.1:{r.server.http.port}/v1/traces"


def post(url, body: bytes, ctype="application/x-protobuf", headers=None):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def spans(n: int, prefix="s", **attrs):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "t"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}{i}", attributes=attrs):
            pass
    tp.shutdown()
    return mem.get_finished_spans()


def test_official_http_exporter_protobuf_and_gzip(both):
    for compression in (Compression.NoCompression, Compression.Gzip):
        exp = HttpExporter(endpoint=http_url(both), compression=compression, timeout=30)
        assert exp.export(spans(3, prefix=f"{compression.value}-")).name == "SUCCESS"
    assert both.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 6


def test_otlp_json_request_and_response_in_json(both):
    status, headers, body = post(http_url(both), (FIXTURES / "vercel_ai.json").read_bytes(), "application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {}
    assert both.rows("SELECT count(*) AS n FROM steps WHERE service_name = 'fixture-vercel-ai'")[0]["n"] == 7
    # the same trace over gRPC protobuf is the same spans: nothing new is stored
    status, _, _ = post(http_url(both), (FIXTURES / "vercel_ai.pb").read_bytes())
    assert status == 200 and both.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 7


def test_http_partial_success_and_errors_are_google_rpc_status(both):
    body = request(make_span("ok", span_id=1), make_span("bad", span_id=b"\x01"))
    status, _, raw = post(http_url(both), body)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
    resp = ExportTraceServiceResponse.FromString(raw)
    assert status == 200 and resp.partial_success.rejected_spans == 1
    status, _, raw = post(http_url(both), b"\x0a\xff\xff", "application/x-protobuf")
    st = status_pb2.Status.FromString(raw)
    assert status == 400 and st.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "not a valid" in st.message
    status, _, raw = post(http_url(both), b"{}", "text/plain")
    assert status == 415
    status, _, raw = post(http_url(both), gzip.compress(b"\0" * (2 << 20)), headers={"Content-Encoding": "gzip"})
    assert status == 400  # gunzipped fine, but not a request


def test_body_over_the_limit_is_413_and_resource_exhausted(tmp_path):
    r = Running(tmp_path / "limit.duckdb", http_port=0, max_request_bytes=64 * 1024).start()
    try:
        big = request(*[make_span(f"s{i}", span_id=i + 1, attrs={"pad": "x" * 1000}) for i in range(100)])
        assert len(big) > 64 * 1024
        assert post(http_url(r), big)[0] == 413
        bomb = gzip.compress(b"\0" * (10 << 20))  # 10 KiB that would expand to 10 MiB
        assert post(http_url(r), bomb, headers={"Content-Encoding": "gzip"})[0] == 413
        with grpc.insecure_channel(r.address) as ch:
            with pytest.raises(grpc.RpcError) as exc:
                ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(big, timeout=10)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert post(http_url(r), request(make_span("small")))[0] == 200  # still serving
    finally:
        r.stop()


def _block_writer(server: Server, seconds: float) -> threading.Event:
    started = threading.Event()

    def job(store):
        started.set()
        time.sleep(seconds)
    threading.Thread(target=server.pipeline.run_in_writer, args=(job,), daemon=True).start()
    assert started.wait(5)
    return started


def test_overload_answers_retry_signals_and_the_official_exporters_retry_until_stored(tmp_path):
    r = Running(tmp_path / "busy.duckdb", http_port=0, max_queued_spans=100).start()
    try:
        _block_writer(r.server, 3.0)
        first = request(*[make_span(f"a{i}", span_id=i + 1) for i in range(80)])
        t = threading.Thread(target=post, args=(http_url(r), first), daemon=True)
        t.start()
        time.sleep(0.5)  # 80 spans now wait for the blocked writer
        second = request(*[make_span(f"b{i}", span_id=i + 1000) for i in range(50)])
        status, headers, raw = post(http_url(r), second)
        assert status == 503 and int(headers["Retry-After"]) >= 1
        with grpc.insecure_channel(r.address) as ch:
            with pytest.raises(grpc.RpcError) as exc:
                ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(second, timeout=10)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        details = dict(exc.value.trailing_metadata())["grpc-status-details-bin"]
        info = error_details_pb2.RetryInfo()
        assert status_pb2.Status.FromString(details).details[0].Unpack(info) and info.retry_delay.seconds >= 1
        # the official exporters back off and retry: everything arrives once the writer is free
        grpc_batch, http_batch = spans(60, prefix="grpc-"), spans(60, prefix="http-")
        results = {}
        threads = [threading.Thread(target=lambda: results.__setitem__("grpc", r.exporter().export(grpc_batch))),
                   threading.Thread(target=lambda: results.__setitem__("http", HttpExporter(endpoint=http_url(r), timeout=30).export(http_batch)))]
        for th in threads:
            th.start()
        for th in threads + [t]:
            th.join(60)
        assert {k: v.name for k, v in results.items()} == {"grpc": "SUCCESS", "http": "SUCCESS"}
        assert r.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 80 + 60 + 60
    finally:
        r.stop()


def test_virtual_keys_authenticate_and_attribute(tmp_path):
    db = tmp_path / "keys.duckdb"
    r = Running(db, http_port=0).start()
    try:
        vk, key = r.server.create_key("acme", "support", "support-bot")
        other_vk, other_key = r.server.create_key("globex")
        assert r.server.auth.required
        claims = {"alephant.workspace.id": "globex", "alephant.department.id": "sales"}
        # no key / wrong key: refused, nothing stored
        assert r.exporter().export(spans(1, prefix="anon-")).name == "FAILURE"
        status, _, _ = post(http_url(r), request(make_span("x")), headers={"Authorization": "Bearer nope"})
        assert status == 401
        assert r.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 0
        # a valid key: its workspace and department beat what spans claim; its agent is the default
        assert r.exporter(headers={"authorization": f"Bearer {key}"}).export(spans(2, prefix="k-", **claims)).name == "SUCCESS"
        with shutdown(r.provider(headers={"authorization": f"Bearer {key}"})) as tracer:
            with tracer.start_as_current_span("own-agent", attributes={"alephant.agent.id": "mine"}):
                pass
        status, _, _ = post(http_url(r), request(make_span("via-http", span_id=77)), headers={"Authorization": f"Bearer {key}"})
        assert status == 200
        rows = r.rows("SELECT name, workspace_id, department_id, agent_id, virtual_key_id FROM steps ORDER BY name")
        assert {(x["workspace_id"], x["department_id"], x["virtual_key_id"]) for x in rows} == {("acme", "support", vk.key_id)}
        assert {x["name"]: x["agent_id"] for x in rows}["own-agent"] == "mine"
        assert {x["name"]: x["agent_id"] for x in rows}["k-0"] == "support-bot"
        assert key not in repr(r.rows("SELECT * FROM _spans")) and key not in repr(r.rows("SELECT * FROM _virtual_keys"))
        # tenants query only their own workspace, and only named queries
        with grpc.insecure_channel(r.address) as ch:
            named = ch.unary_unary("/alephant.v1.Query/Named")
            body = orjson.dumps({"name": "cost", "args": {"by": "workspace", "workspace": "acme"}})
            import pyarrow as pa
            mine = pa.ipc.open_stream(named(body, metadata=(("authorization", f"Bearer {key}"),))).read_all().to_pylist()
            theirs = pa.ipc.open_stream(named(body, metadata=(("authorization", f"Bearer {other_key}"),))).read_all().to_pylist()
            assert [x["workspace_id"] for x in mine] == ["acme"] and theirs == []
            with pytest.raises(grpc.RpcError) as exc:
                ch.unary_unary("/alephant.v1.Query/Sql")(orjson.dumps({"sql": "SELECT 1"}),
                                                        metadata=(("authorization", f"Bearer {key}"),))
            assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        r.server.revoke_key(vk.key_id)
        assert r.exporter(headers={"authorization": f"Bearer {key}"}).export(spans(1, prefix="late-")).name == "FAILURE"
        assert r.rows("SELECT count(*) AS n FROM steps WHERE name LIKE 'late-%'")[0]["n"] == 0
    finally:
        r.stop()
    r2 = Running(db).start()  # keys survive a restart
    try:
        assert r2.server.auth.required
        assert [k.revoked_at is not None for k in keys.all_keys(r2.server.store.con)] == [True, False]
    finally:
        r2.stop()


def test_without_keys_spans_go_to_the_default_workspace(both):
    with shutdown(both.provider()) as tracer:
        with tracer.start_as_current_span("plain"):
            pass
        with tracer.start_as_current_span("named", attributes={"alephant.workspace.id": "ws-x"}):
            pass
    assert both.step("plain")["workspace_id"] == "default" and both.step("named")["workspace_id"] == "ws-x"


def test_require_auth_without_any_key(tmp_path):
    r = Running(tmp_path / "req.duckdb", require_auth=True).start()
    try:
        assert r.exporter().export(spans(1)).name == "FAILURE"
        assert r.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 0
    finally:
        r.stop()


def test_message_content_is_stored_only_when_opted_in(tmp_path):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": json.dumps([{"role": "user", "content": "secret plan"}]),
             "llm.input_messages.0.message.content": "secret plan", "gen_ai.request.model": "m"}
    for opt_in in (False, True):
        r = Running(tmp_path / f"content-{opt_in}.duckdb", store_content=opt_in).start()
        try:
            with shutdown(r.provider()) as tracer:
                with tracer.start_as_current_span("chat", attributes=attrs) as s:
                    s.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "secret plan"})
            stored = r.rows("SELECT attributes, events FROM spans")[0]
        finally:
            r.stop()
        a = json.loads(stored["attributes"])
        if opt_in:
            assert "secret plan" in stored["attributes"] and "secret plan" in stored["events"]
        else:
            assert "secret plan" not in repr(stored)
            assert a["gen_ai.input.messages"] == {"omitted_content_bytes": len(orjson.dumps(attrs["gen_ai.input.messages"]))}
            assert a["llm.input_messages.0.message.content"]["omitted_content_bytes"] == len('"secret plan"')


def test_binding_beyond_loopback_without_keys_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        s = Server(str(tmp_path / "open.duckdb"), "0.0.0.0", 0)
    s.store.close()
    assert any("without virtual keys" in rec.message for rec in caplog.records)


def test_mapping_in_worker_processes_gives_the_same_steps(tmp_path):
    """serve maps in worker processes by default (cores - 1): same steps as mapping in-thread,
    with rules and prices carried to the workers."""
    from alephant_otel.mapping.rules import RuleSet
    from alephant_otel.price_list import PriceList
    rules = RuleSet.parse("rules:\n  - match: {name: '^custom'}\n    set: {step_kind: tool_call, tool_name: {const: c}}\n")
    prices = PriceList.parse("version: w1\ntools: {c: 0.5}\n")
    body = (FIXTURES / "traceloop_openai.pb").read_bytes()
    extra = request(make_span("custom thing", span_id=99))
    results = []
    for workers in (0, 1):
        r = Running(tmp_path / f"w{workers}.duckdb", http_port=0, workers=workers, rules=rules, prices=prices).start()
        try:
            assert post(http_url(r), body)[0] == 200 and post(http_url(r), extra)[0] == 200
            results.append(r.rows("SELECT span_id, step_kind, model, input_tokens, model_cost, tool_name, tool_cost,"
                                  " session_id, user_id, run_id FROM steps ORDER BY span_id"))
        finally:
            r.stop()
    assert results[0] == results[1] and len(results[0]) == 8
    assert [x["tool_cost"] for x in results[1] if x["tool_name"] == "c"] == [Decimal("0.5")]


def test_a_worker_refuses_a_request_the_receiver_only_counted(tmp_path):
    """With worker processes the receiver admits a request by counting its spans (wire.py); a
    span the worker cannot parse, or an attribute that is not UTF-8, still refuses the whole
    request (400), stores none of it, and leaves the queue's count where it was."""
    def ld(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field (short)
        return bytes([number << 3 | 2, len(payload)]) + payload

    good = make_span("kept", span_id=1).SerializeToString()
    corrupt_span = ld(1, ld(2, ld(2, good) + ld(2, b"\x0a\x05\xff")))  # request > resource spans > scope spans
    not_utf8 = ld(1, ld(2, ld(2, make_span("bad", span_id=2).SerializeToString()
                               + ld(9, ld(1, b"k") + ld(2, ld(1, b"\xff\xfe"))))))
    r = Running(tmp_path / "w.duckdb", http_port=0, workers=1).start()
    try:
        for body in (corrupt_span, not_utf8):
            status, _, text = post(http_url(r), body)
            assert status == 400 and b"ExportTraceServiceRequest" in text
        assert r.server.pipeline._queued_spans == 0
        assert r.rows("SELECT count(*) AS n FROM steps")[0]["n"] == 0
        assert post(http_url(r), request(make_span("later", span_id=3)))[0] == 200
        assert [x["name"] for x in r.rows("SELECT name FROM steps")] == ["later"]
    finally:
        r.stop()
