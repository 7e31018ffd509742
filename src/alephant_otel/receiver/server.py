"""Run a receiver: open the store, start the pipeline and transports, stop cleanly."""
from __future__ import annotations

import ipaddress
import logging
import secrets
import signal
import threading

from ..store import Store, keys
from . import discovery
from .auth import Authenticator
from .grpc_server import MAX_MESSAGE_BYTES, GrpcReceiver
from .http_server import HttpReceiver
from .pipeline import Pipeline

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """Everything `alephant-otel serve` runs, usable in-process (tests, embedding).
    `http_port=None` serves gRPC only."""

    def __init__(self, db_path: str, host: str = "127.0.0.1", grpc_port: int = 4317, http_port: int | None = None,
                 rules=None, cost_preference: str = "provided", prices=None, store_content: bool = False,
                 require_auth: bool = False, max_request_bytes: int = MAX_MESSAGE_BYTES,
                 max_queued_spans: int = 25_000, workers: int = 0, data_path: str | None = None,
                 duckdb_threads: int | None = None, checkpoint_mb: int | None = None):
        self.db_path = db_path  # a DuckDB file, or a DuckLake (ducklake:postgres://..., with data_path)
        self.store = Store(db_path, data_path)
        if duckdb_threads is not None:
            self.store.set_threads(duckdb_threads)
        if checkpoint_mb is not None:
            self.store.set_checkpoint_mb(checkpoint_mb)
        self.auth = Authenticator.from_store(self.store.con, require_auth)
        self.pipeline = Pipeline(self.store, max_queued_spans=max_queued_spans, rules=rules,
                                 cost_preference=cost_preference, prices=prices, store_content=store_content,
                                 workers=workers)
        self.info = None
        self.admin_token = secrets.token_urlsafe(24)
        self.http = None
        try:
            self.grpc = GrpcReceiver(self.pipeline, host, grpc_port, admin_token=self.admin_token, auth=self.auth,
                                     max_request_bytes=max_request_bytes, key_admin=self)
            if http_port is not None:
                self.http = HttpReceiver(self.pipeline, host, http_port, auth=self.auth,
                                         max_request_bytes=max_request_bytes)
                from ..ui import routes as ui_routes  # the read-only web view, under /ui
                self.http.extra_routes += ui_routes(self.store, self.auth, self.admin_token)
        except BaseException:
            self.store.close()
            raise
        if not is_loopback(host) and not self.auth.required:
            log.warning("listening on %s without virtual keys: anyone who reaches it can write; "
                        "create keys (alephant-otel keys create) or use --require-auth", host)

    def start(self) -> "Server":
        self.pipeline.start()
        self.grpc.start()
        if self.http is not None:
            self.http.start()
        if self.store.local:  # a DuckLake is read directly by the CLI: nothing to discover
            self.info = discovery.write_info(self.store.path, self.grpc.address, self.admin_token)
        # a DuckLake: adopt orphans other receivers' spans complete; see keys other CLIs create
        self.store.start_background(lambda con: self.auth.set_keys(keys.all_keys(con)))
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight exports finish, drain the queue, close the file."""
        if self.http is not None:
            self.http.stop()
        self.grpc.stop(grace)
        self.pipeline.stop()
        self.store.close()
        if self.info is not None:
            discovery.remove_info(self.store.path, self.info)

    # -- virtual keys while serving (the writer thread owns the file) --------------------------
    def create_key(self, workspace, department=None, agent=None):
        vk, key = self.pipeline.run_in_writer(lambda store: keys.create(store.con, workspace, department, agent))
        self._reload_keys()
        return vk, key

    def revoke_key(self, key_id: str) -> None:
        self.pipeline.run_in_writer(lambda store: keys.revoke(store.con, key_id))
        self._reload_keys()

    def list_keys(self):
        return self.pipeline.run_in_writer(lambda store: keys.all_keys(store.con))

    def _reload_keys(self) -> None:
        self.auth.set_keys(self.pipeline.run_in_writer(lambda store: keys.all_keys(store.con)))

    def serve_forever(self) -> None:
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        self.stop()
