"""Where query commands read from: the file itself, or the server that holds it.

`connect(db)` returns a RemoteSource when a live server holds the file (see
receiver/discovery.py) and a LocalSource (read-only DuckDB connection) otherwise. Both return
Arrow tables, so results look the same either way.
"""
from __future__ import annotations

import grpc
import orjson
import pyarrow as pa

from ..errors import QueryError, StoreError
from ..receiver import discovery
from ..receiver.grpc_server import QUERY_SERVICE, TOKEN_HEADER
from ..store import is_lock_error, open_for_reading


class LocalSource:
    def __init__(self, db_path: str):
        self.con = open_for_reading(db_path)

    def query(self, sql: str, params=None) -> pa.Table:
        try:
            return self.con.execute(sql, params or []).to_arrow_table()
        except Exception as exc:
            raise QueryError(str(exc).splitlines()[0]) from None

    def close(self) -> None:
        self.con.close()


class RemoteSource:
    def __init__(self, info: discovery.ServerInfo, timeout: float = 60.0):
        self.info = info
        self.timeout = timeout
        self.channel = grpc.insecure_channel(info.grpc_address)

    def query(self, sql: str, params=None) -> pa.Table:
        body = orjson.dumps({"sql": sql, "params": list(params or [])}, default=str)
        return pa.ipc.open_stream(self._rpc("Sql", body)).read_all()

    def reprice(self, request: dict) -> dict:
        return orjson.loads(self._rpc("Reprice", orjson.dumps(request)))

    def _rpc(self, method: str, body: bytes) -> bytes:
        call = self.channel.unary_unary(f"/{QUERY_SERVICE}/{method}")
        try:
            return call(body, timeout=self.timeout, metadata=((TOKEN_HEADER, self.info.token),))
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ConnectionError(exc.details()) from None
            raise QueryError(exc.details()) from None

    def close(self) -> None:
        self.channel.close()


def connect(db_path: str):
    """A source for `db_path`: through the running server if one holds it, else the file."""
    info = discovery.read_info(db_path)
    if info is not None:
        remote = RemoteSource(info, timeout=60.0)
        try:
            remote.query("SELECT 1")
            return remote
        except ConnectionError:
            remote.close()  # a stale file from a server that died: read the file itself
    try:
        return LocalSource(db_path)
    except StoreError as exc:
        if is_lock_error(exc):
            raise StoreError(
                f"{db_path} is held by another process and no running alephant-otel server "
                "answers for it; stop that process or query through its server") from None
        raise
