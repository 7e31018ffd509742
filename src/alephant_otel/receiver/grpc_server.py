"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

Request bodies are taken as raw bytes and handed to the shared pipeline. Status mapping:
  undecodable request      INVALID_ARGUMENT (not retried)
  write queue full         UNAVAILABLE (retried by every OTLP exporter)
  store failed             UNAVAILABLE
  some spans unmappable    OK with partial_success (rejected_spans, error_message)
The same server answers `alephant.v1.Query/Sql` for the CLI (read-only SQL, token-protected).
"""
from __future__ import annotations

import logging
from concurrent import futures

import grpc
import orjson
import pyarrow as pa
import duckdb

from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..errors import AlephantError
from ..otlp import ExportTraceServiceResponse
from .auth import Authenticator, bearer
from .errors import Refusal, classify
from .pipeline import Overloaded, Pipeline, StoreUnavailable

log = logging.getLogger(__name__)

EXPORT_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
QUERY_SERVICE = "alephant.v1.Query"
TOKEN_HEADER = "alephant-admin-token"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _abort(context: grpc.ServicerContext, refusal: Refusal):
    """Abort with a google.rpc.Status; retryable refusals carry a RetryInfo delay so that the
    official exporters and the collector back off and retry instead of dropping data."""
    status = status_pb2.Status(code=refusal.grpc_code.value[0], message=refusal.message)
    if refusal.retry_after is not None:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromMilliseconds(int(refusal.retry_after * 1000))
        status.details.add().Pack(info)
    context.abort_with_status(rpc_status.to_status(status))


def _export_handler(pipeline: Pipeline, auth: Authenticator):
    def export(data: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            md = context.invocation_metadata()
            result = pipeline.export(data, md, attribution=auth.attribution(md))
        except Exception as exc:
            refusal = classify(exc)
            if refusal.http_status == 503 and not isinstance(exc, (Overloaded, StoreUnavailable)):
                log.exception("export failed")
            _abort(context, refusal)
        resp = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
            resp.partial_success.error_message = result.error_message
        return resp.SerializeToString()
    return export


def check_read_only(sql: str) -> None:
    try:
        stmts = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValueError(str(exc)) from None
    if not stmts:
        raise ValueError("no SQL statement given")
    for st in stmts:
        if st.type not in READ_ONLY_STATEMENTS:
            raise PermissionError(f"only SELECT queries are allowed through the server, not {st.type.name}")


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def _named_handler(pipeline: Pipeline, token: str, auth: Authenticator):
    """Named queries (cost, margin, runs, run, session): the operator (admin token) sees every
    workspace; a tenant (virtual key) only its own. The SQL is built here from fixed pieces
    with the arguments as parameters."""
    from ..query.queries import named

    def query(data: bytes, context: grpc.ServicerContext) -> bytes:
        md = context.invocation_metadata()
        workspace = None
        if dict(md).get(TOKEN_HEADER) != token:
            key = auth.key_for(bearer(md))
            if key is None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token or virtual key")
            workspace = key.workspace_id
        try:
            req = orjson.loads(data)
            table = pipeline.store.query(*named(req["name"], req.get("args") or {}, workspace))
        except (AlephantError, KeyError, TypeError, ValueError, duckdb.Error) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _arrow_bytes(table)
    return query


def _query_handler(pipeline: Pipeline, token: str):
    def sql(data: bytes, context: grpc.ServicerContext) -> bytes:
        md = dict(context.invocation_metadata())
        if md.get(TOKEN_HEADER) != token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token")
        try:
            req = orjson.loads(data)
            check_read_only(req["sql"])
            table = pipeline.store.query(req["sql"], req.get("params") or [])
        except PermissionError as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except (ValueError, KeyError, TypeError, duckdb.Error) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _arrow_bytes(table)
    return sql


def _reprice_handler(pipeline: Pipeline, token: str):
    from ..price_list import PriceList
    from ..query.queries import parse_time

    def reprice(data: bytes, context: grpc.ServicerContext) -> bytes:
        if dict(context.invocation_metadata()).get(TOKEN_HEADER) != token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token")
        try:
            req = orjson.loads(data)
            prices = PriceList.parse(req["prices"], req.get("prices_name") or "<prices>") if req.get("prices") else pipeline.prices
            since = parse_time(req["since"], "--since") if req.get("since") else None
            until = parse_time(req["until"], "--until") if req.get("until") else None
            prefer = req.get("prefer") or pipeline.cost_preference
        except (AlephantError, ValueError, KeyError, TypeError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        n = pipeline.run_in_writer(lambda store: store.reprice(prices, prefer, since, until))
        if req.get("prices"):
            pipeline.set_prices(prices)  # what is received from now on is priced the same way
        return orjson.dumps({"repriced": n, "price_source": prices.source if prices else None})
    return reprice


def _keys_handler(admin, token: str):
    """Create, list and revoke virtual keys through the running server (admin token only)."""
    def keys(data: bytes, context: grpc.ServicerContext) -> bytes:
        if dict(context.invocation_metadata()).get(TOKEN_HEADER) != token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong admin token")
        try:
            req = orjson.loads(data)
            if req["action"] == "create":
                vk, key = admin.create_key(req["workspace"], req.get("department"), req.get("agent"))
                return orjson.dumps({"key": key, **_key_row(vk)}, default=str)
            if req["action"] == "revoke":
                admin.revoke_key(req["key_id"])
                return orjson.dumps({"revoked": req["key_id"]})
            return orjson.dumps([_key_row(k) for k in admin.list_keys()], default=str)
        except (AlephantError, KeyError, ValueError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    return keys


def _key_row(vk) -> dict:
    return {"key_id": vk.key_id, "workspace_id": vk.workspace_id, "department_id": vk.department_id,
            "agent_id": vk.agent_id, "created_at": vk.created_at, "revoked_at": vk.revoked_at}


class GrpcReceiver:
    def __init__(self, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 4317,
                 admin_token: str | None = None, max_workers: int = 16, auth: Authenticator | None = None,
                 max_request_bytes: int = MAX_MESSAGE_BYTES, key_admin=None):
        self.pipeline = pipeline
        self.auth = auth or Authenticator()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-grpc"),
            # over the limit, gRPC itself answers RESOURCE_EXHAUSTED before reading the body
            options=[("grpc.max_receive_message_length", max_request_bytes),
                     ("grpc.so_reuseport", 0)],
        )
        handlers = {"Export": grpc.unary_unary_rpc_method_handler(_export_handler(pipeline, self.auth))}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EXPORT_SERVICE, handlers),))
        if admin_token:
            q = {"Sql": grpc.unary_unary_rpc_method_handler(_query_handler(pipeline, admin_token)),
                 "Named": grpc.unary_unary_rpc_method_handler(_named_handler(pipeline, admin_token, self.auth)),
                 "Reprice": grpc.unary_unary_rpc_method_handler(_reprice_handler(pipeline, admin_token))}
            if key_admin is not None:
                q["Keys"] = grpc.unary_unary_rpc_method_handler(_keys_handler(key_admin, admin_token))
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(QUERY_SERVICE, q),))
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self.server.add_insecure_port(addr)
        if self.port == 0:
            raise OSError(f"cannot listen on {addr}")
        self.host = host

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> "GrpcReceiver":
        self.server.start()
        return self

    def stop(self, grace: float = 5.0) -> None:
        self.server.stop(grace).wait()
