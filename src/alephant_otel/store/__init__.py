"""The store: schema, migrations, the single writer, and the public views.

`Store(spec)` opens a DuckDB file (a path, or `duckdb:PATH`) or a DuckLake
(`ducklake:postgres://user@host:port/dbname`, see lake.py and backends.py); both have the same
API and the same public views.
"""
from __future__ import annotations

import importlib

# Names are imported on first use: the mapping workers use rows.py and schema.py without
# loading DuckDB (~35 MB per process).
_WHERE = {"Store": "stores", "LakeStore": "stores", "WriteResult": "writer", "open_for_reading": "database",
          "open_for_writing": "database", "is_lock_error": "database", "parse_spec": "backends"}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = list(_WHERE)
