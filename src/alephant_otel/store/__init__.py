"""The DuckDB store: schema, migrations, the single writer, and the public views."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from .database import is_lock_error, open_for_reading, open_for_writing
from .writer import WriteResult, Writer


class Store:
    """A store file opened for writing (one per file). Reads go through `query`, which uses
    its own cursor so it never waits for, or blocks, the writer."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.con = open_for_writing(self.path)
        self.writer = Writer(self.con)

    def write(self, steps: list[dict], rejected=()) -> WriteResult:
        return self.writer.write(steps, rejected)

    def reprice(self, prices, prefer: str = "provided", since=None, until=None) -> int:
        """Recompute computed costs in [since, until) with `prices` (see store/reprice.py)."""
        from .reprice import reprice
        return reprice(self.con, prices, prefer, since, until)

    def query(self, sql: str, params=None) -> pa.Table:
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).to_arrow_table()
        finally:
            cur.close()

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["Store", "WriteResult", "open_for_reading", "open_for_writing", "is_lock_error"]
