"""The store opened for writing: a DuckDB file (`Store`) or a DuckLake (`LakeStore`)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from .backends import StoreSpec, parse_spec
from .database import open_for_writing
from .writer import WriteResult, Writer


class Store:
    """A store opened for writing. A DuckDB file has one writer (one process); a DuckLake has
    any number of them. Reads go through `query`, which uses its own cursor so it never waits
    for, or blocks, the writer."""

    local = True  # a DuckDB file on this machine (a running server can be found beside it)

    def __new__(cls, path: str | Path, *args, **kwargs):
        if cls is Store and parse_spec(str(path)).is_lake:
            return super().__new__(LakeStore)
        return super().__new__(cls)

    def __init__(self, path: str | Path, data_path: str | None = None):
        self.spec: StoreSpec = parse_spec(str(path))
        self.path = self.spec.path
        self.con = open_for_writing(self.path)
        self.writer = Writer(self.con)

    def write(self, steps: list[dict], rejected=(), ready=()) -> WriteResult:
        """Write mapped steps and ready rows (rows.ReadyRows, see rows.prepare) in one
        transaction; spans stored before are not stored again."""
        return self.writer.write(steps, rejected, ready)

    def set_threads(self, n: int) -> None:
        """Threads DuckDB may use, for the writer and every query on this store's cursors.
        Commits of a few thousand rows gain nothing from a second thread and cost more CPU
        (README, Performance)."""
        self.con.execute(f"SET threads = {int(n)}")

    def set_checkpoint_mb(self, mb: int) -> None:
        """Checkpoint the file once its write-ahead log passes `mb` MB (default
        config.DEFAULT_CHECKPOINT_MB). The commit that checkpoints waits for it, and so do the
        exports in it: a smaller threshold shortens those waits (the tail latency), a larger one
        costs a little less CPU per step (README, Performance)."""
        self.con.execute(f"SET checkpoint_threshold = '{int(mb)}MB'")

    def reprice(self, prices, prefer: str = "provided", since=None, until=None) -> int:
        """Recompute computed costs in [since, until) with `prices` (see store/reprice.py)."""
        from .reprice import reprice
        return reprice(self.con, prices, prefer, since, until)

    def query(self, sql: str, params=None) -> pa.Table:
        cur = self._cursor()
        try:
            return cur.execute(sql, params or []).to_arrow_table()
        finally:
            cur.close()

    def _cursor(self):
        return self.con.cursor()

    def start_background(self, on_tick=None, interval: float | None = None) -> None:
        """Periodic work while serving (a DuckDB file has none; see LakeStore)."""

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LakeStore(Store):
    """A DuckLake opened for writing by one of several receivers (see lake.py). While serving,
    a background thread adopts orphans whose missing ancestor another receiver stored."""

    local = False
    adopt_interval = 2.0  # seconds between adoption passes while serving

    def __init__(self, path: str | Path, data_path: str | None = None):
        from . import lake

        self.spec = parse_spec(str(path))
        self.path = self.spec.display
        self.con = lake.open_for_writing(self.spec, data_path)
        self.writer = lake.LakeWriter(self.con)
        self._background = None

    def _cursor(self):
        from .backends import LAKE_ALIAS

        cur = self.con.cursor()
        cur.execute(f"USE {LAKE_ALIAS}")
        return cur

    def reprice(self, prices, prefer: str = "provided", since=None, until=None) -> int:
        from .lake import retrying
        from .reprice import reprice
        return retrying(lambda: reprice(self.con, prices, prefer, since, until, table="_span_rows"), what="reprice")

    def adopt(self) -> int:
        """One adoption pass now (see adopt.py); returns how many spans were re-resolved."""
        from .adopt import adopt
        return adopt(self.writer)

    def start_background(self, on_tick=None, interval: float | None = None) -> None:
        from .lake import Background

        if self._background is None:
            self._background = Background(self._cursor(), interval or self.adopt_interval, on_tick)
            self._background.start()

    def close(self) -> None:
        if self._background is not None:
            self._background.stop()
            self._background = None
        self.con.close()

