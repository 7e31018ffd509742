"""Run a receiver: open the store, start the pipeline and transports, stop cleanly."""
from __future__ import annotations

import secrets
import signal
import threading

from ..store import Store
from . import discovery
from .grpc_server import GrpcReceiver
from .pipeline import Pipeline


class Server:
    """Everything `alephant-otel serve` runs, usable in-process (tests, embedding)."""

    def __init__(self, db_path: str, host: str = "127.0.0.1", grpc_port: int = 4317,
                 rules=None, cost_preference: str = "provided", prices=None):
        self.db_path = db_path
        self.store = Store(db_path)
        self.pipeline = Pipeline(self.store, rules=rules, cost_preference=cost_preference, prices=prices)
        self.info = None
        self.admin_token = secrets.token_urlsafe(24)
        try:
            self.grpc = GrpcReceiver(self.pipeline, host, grpc_port, admin_token=self.admin_token)
        except BaseException:
            self.store.close()
            raise

    def start(self) -> "Server":
        self.pipeline.start()
        self.grpc.start()
        self.info = discovery.write_info(self.db_path, self.grpc.address, self.admin_token)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight exports finish, drain the queue, close the file."""
        self.grpc.stop(grace)
        self.pipeline.stop()
        self.store.close()
        if self.info is not None:
            discovery.remove_info(self.db_path, self.info)

    def serve_forever(self) -> None:
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        self.stop()
