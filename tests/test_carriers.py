"""Every carrier of Alephant context, through the real receiver with the official exporter."""
from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server
from urllib.request import Request, urlopen

from opentelemetry import baggage, context
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource

from conftest import shutdown


def test_span_attributes_fill_every_context_column(receiver):
    attrs = {
        "alephant.workspace.id": "ws1", "alephant.department.id": "dep1",
        "alephant.agent.id": "agent1", "alephant.agent.name": "Agent One",
        "alephant.virtual_key.id": "vk1", "alephant.session.id": "s1",
        "alephant.session.path": "/a/b", "alephant.session.name": "Session one",
        "alephant.run.id": "r1", "alephant.request.id": "req1", "alephant.prompt.id": "p1",
        "alephant.prompt.version": "3", "alephant.property.tier": "gold",
    }
    with shutdown(receiver.provider()) as tracer:
        with tracer.start_as_current_span("root", attributes=attrs):
            pass
    s = receiver.step("root")
    assert (s["workspace_id"], s["department_id"], s["agent_id"], s["agent_name"]) == ("ws1", "dep1", "agent1", "Agent One")
    assert (s["virtual_key_id"], s["session_id"], s["session_path"], s["session_name"]) == ("vk1", "s1", "/a/b", "Session one")
    assert (s["run_id"], s["request_id"], s["prompt_id"], s["prompt_version"]) == ("r1", "req1", "p1", "3")
    assert json.loads(s["properties"]) == {"tier": "gold"}
    assert "alephant" in s["convention"]


def test_baggage_through_the_contrib_baggage_span_processor(receiver):
    tp = receiver.provider(processors=[BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS)])
    ctx = baggage.set_baggage("alephant.run.id", "run-from-baggage")
    ctx = baggage.set_baggage("alephant.session.id", "sess-from-baggage", ctx)
    token = context.attach(ctx)
    try:
        with shutdown(tp) as tracer:
            with tracer.start_as_current_span("with-baggage"):
                pass
    finally:
        context.detach(token)
    s = receiver.step("with-baggage")
    assert (s["run_id"], s["session_id"]) == ("run-from-baggage", "sess-from-baggage")


def test_captured_headers_both_spellings_any_case_and_no_secrets(receiver):
    attrs = {
        "http.request.header.alephant_run_id": ["run-underscore"],
        "http.request.header.Alephant-Session-Id": ["sess-dash"],
        "http.request.header.x_alephant_agent": ["legacy-agent"],
        "http.request.header.alephant-property-user-tier": ["pro"],
        "http.request.header.x-request-id": ["req-7"],
        "http.request.header.authorization": ["Bearer sk-very-secret"],
        "http.request.header.alephant_session_path": ["/classify/intent"],
    }
    with shutdown(receiver.provider()) as tracer:
        with tracer.start_as_current_span("server-span", attributes=attrs):
            pass
    s = receiver.step("server-span")
    assert s["run_id"] == "run-underscore"
    assert s["session_id"] == "sess-dash"
    assert s["agent_id"] == "legacy-agent"
    assert s["request_id"] == "req-7"
    assert s["session_path"] == "/classify/intent"
    assert json.loads(s["properties"]) == {"user_tier": "pro"}
    everything = receiver.rows("SELECT * FROM _spans")
    assert "sk-very-secret" not in repr(everything)


def test_headers_captured_by_the_real_wsgi_instrumentation(receiver, monkeypatch):
    """A real instrumented WSGI server captures the headers; we read them off its span."""
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
                       "Alephant-Run-Id,alephant-session-id,Alephant-Agent-Id,alephant-property-.*,authorization")
    tp = receiver.provider()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass

    httpd = make_server("127.0.0.1", 0, OpenTelemetryMiddleware(app, tracer_provider=tp), handler_class=Quiet)
    t = threading.Thread(target=httpd.handle_request)
    t.start()
    req = Request(f"http://127.0.0.1:{httpd.server_port}/chat", headers={
        "Alephant-Run-Id": "run-wsgi", "alephant-session-id": "sess-wsgi",
        "Alephant-Agent-Id": "agent-wsgi", "alephant-property-variant": "B",
        "Authorization": "Bearer vk-secret-123"})
    assert urlopen(req).read() == b"ok"
    t.join()
    httpd.server_close()
    tp.shutdown()
    rows = receiver.rows("SELECT * FROM steps")
    assert len(rows) == 1
    s = rows[0]
    assert (s["run_id"], s["session_id"], s["agent_id"]) == ("run-wsgi", "sess-wsgi", "agent-wsgi")
    assert json.loads(s["properties"]) == {"variant": "B"}
    assert "vk-secret-123" not in repr(receiver.rows("SELECT * FROM _spans"))


def test_resource_attributes_from_otel_resource_attributes(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES",
                       "alephant.agent.id=res-agent,alephant.workspace.id=ws-res,alephant.property.region=eu")
    with shutdown(receiver.provider(Resource.create({"service.name": "svc"}))) as tracer:
        with tracer.start_as_current_span("from-resource"):
            pass
    s = receiver.step("from-resource")
    assert (s["agent_id"], s["workspace_id"], s["service_name"]) == ("res-agent", "ws-res", "svc")
    assert json.loads(s["properties"]) == {"region": "eu"}


def test_export_call_headers_tag_every_span_and_secrets_are_dropped(receiver):
    headers = {"alephant-agent-id": "zero-code-agent", "alephant-session-id": "zero-code-session",
               "alephant-property-team": "payments", "authorization": "Bearer vk-live-should-not-store"}
    with shutdown(receiver.provider(headers=headers)) as tracer:
        with tracer.start_as_current_span("parent"):
            with tracer.start_as_current_span("child"):
                pass
    for name in ("parent", "child"):
        s = receiver.step(name)
        assert (s["agent_id"], s["session_id"]) == ("zero-code-agent", "zero-code-session")
        assert json.loads(s["properties"]) == {"team": "payments"}
    assert "vk-live-should-not-store" not in repr(receiver.rows("SELECT * FROM _spans"))


def test_gen_ai_conventions_give_session_and_agent(receiver):
    with shutdown(receiver.provider()) as tracer:
        with tracer.start_as_current_span("invoke_agent helper", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                "gen_ai.conversation.id": "conv-1"}):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}):
                pass
        with tracer.start_as_current_span("legacy", attributes={"gen_ai.agent.id": "agent-by-id",
                                                                "gen_ai.agent.name": "by-name"}):
            pass
    agent = receiver.step("invoke_agent helper")
    chat = receiver.step("chat gpt-4o-mini")
    assert (agent["agent_id"], agent["agent_name"], agent["session_id"]) == ("helper", "helper", "conv-1")
    assert (chat["agent_id"], chat["session_id"]) == ("helper", "conv-1")
    assert receiver.step("legacy")["agent_id"] == "agent-by-id"
