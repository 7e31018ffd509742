"""Where query commands read from: the file itself, the server that holds it, or a DuckLake.

`connect(db)` returns a RemoteSource when a live server holds the file (see
receiver/discovery.py) and a LocalSource (read-only DuckDB connection) otherwise. A DuckLake
(`ducklake:postgres://...`) is always read directly: DuckLake has any number of readers, so
the CLI attaches it read-only while receivers write. Both return Arrow tables, so results look
the same either way.
"""
from __future__ import annotations

import grpc
import orjson
import pyarrow as pa

from ..errors import QueryError, StoreError
from ..receiver import discovery
from ..receiver.grpc_server import QUERY_SERVICE, TOKEN_HEADER
from ..store import is_lock_error, open_for_reading, parse_spec
from .queries import named


class LocalSource:
    def __init__(self, db_path: str):
        self.con = open_for_reading(db_path)

    def query(self, sql: str, params=None) -> pa.Table:
        try:
            return self.con.execute(sql, params or []).to_arrow_table()
        except Exception as exc:
            raise QueryError(str(exc).splitlines()[0]) from None

    def named(self, name: str, args: dict) -> pa.Table:
        return self.query(*named(name, args))

    def close(self) -> None:
        self.con.close()


class RemoteSource:
    """Queries through a running server: with its admin token (from the discovery file), or as
    a tenant with a virtual key (`key`; only named queries, scoped to the key's workspace)."""

    def __init__(self, info: discovery.ServerInfo, timeout: float = 60.0, key: str | None = None):
        self.info = info
        self.timeout = timeout
        self.key = key
        self.channel = grpc.insecure_channel(info.grpc_address)

    def named(self, name: str, args: dict) -> pa.Table:
        body = orjson.dumps({"name": name, "args": args}, default=str)
        return pa.ipc.open_stream(self._rpc("Named", body)).read_all()

    def query(self, sql: str, params=None) -> pa.Table:
        body = orjson.dumps({"sql": sql, "params": list(params or [])}, default=str)
        return pa.ipc.open_stream(self._rpc("Sql", body)).read_all()

    def keys(self, request: dict):
        return orjson.loads(self._rpc("Keys", orjson.dumps(request)))

    def export(self, request) -> dict:
        """Send an ExportTraceServiceRequest to the server (as any OTLP client would)."""
        from ..otlp import ExportTraceServiceResponse
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        call = self.channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        resp = ExportTraceServiceResponse.FromString(call(request.SerializeToString(), timeout=self.timeout))
        rejected = resp.partial_success.rejected_spans
        return {"accepted": n - rejected, "duplicates": 0, "rejected": rejected}

    def reprice(self, request: dict) -> dict:
        return orjson.loads(self._rpc("Reprice", orjson.dumps(request)))

    def _rpc(self, method: str, body: bytes) -> bytes:
        call = self.channel.unary_unary(f"/{QUERY_SERVICE}/{method}")
        md = (("authorization", f"Bearer {self.key}"),) if self.key else ((TOKEN_HEADER, self.info.token),)
        try:
            return call(body, timeout=self.timeout, metadata=md)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ConnectionError(exc.details()) from None
            raise QueryError(exc.details()) from None

    def close(self) -> None:
        self.channel.close()


def running_server(db_path: str) -> RemoteSource | None:
    """The live server that holds `db_path`, if there is one (never for a DuckLake)."""
    spec = parse_spec(db_path)
    if spec.is_lake:
        return None
    info = discovery.read_info(spec.path)
    if info is None:
        return None
    remote = RemoteSource(info, timeout=60.0)
    try:
        remote.query("SELECT 1")
        return remote
    except ConnectionError:
        remote.close()
        return None


def connect(db_path: str):
    """A source for `db_path`: through the running server if one holds it, else the file."""
    remote = running_server(db_path)  # (a stale file from a server that died is ignored)
    if remote is not None:
        return remote
    try:
        return LocalSource(db_path)
    except StoreError as exc:
        if is_lock_error(exc):
            raise StoreError(
                f"{db_path} is held by another process and no running alephant-otel server "
                "answers for it; stop that process or query through its server") from None
        raise
