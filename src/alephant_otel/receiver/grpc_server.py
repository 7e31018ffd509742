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

from ..errors import AlephantError, DecodeError
from ..otlp import ExportTraceServiceResponse
from .pipeline import Overloaded, Pipeline, StoreUnavailable

log = logging.getLogger(__name__)

EXPORT_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
QUERY_SERVICE = "alephant.v1.Query"
TOKEN_HEADER = "alephant-admin-token"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _export_handler(pipeline: Pipeline):
    def export(data: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            result = pipeline.export(data, context.invocation_metadata())
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry later")
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception:
            log.exception("export failed")
            context.abort(grpc.StatusCode.UNAVAILABLE, "internal error while storing; retry")
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
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()
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
            pipeline.prices = prices  # what is received from now on is priced the same way
        return orjson.dumps({"repriced": n, "price_source": prices.source if prices else None})
    return reprice


class GrpcReceiver:
    def __init__(self, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 4317,
                 admin_token: str | None = None, max_workers: int = 16):
        self.pipeline = pipeline
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)],
        )
        handlers = {"Export": grpc.unary_unary_rpc_method_handler(_export_handler(pipeline))}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EXPORT_SERVICE, handlers),))
        if admin_token:
            q = {"Sql": grpc.unary_unary_rpc_method_handler(_query_handler(pipeline, admin_token)),
                 "Reprice": grpc.unary_unary_rpc_method_handler(_reprice_handler(pipeline, admin_token))}
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
