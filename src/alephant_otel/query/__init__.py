"""Reading the store: sources (file or server) and the CLI's queries."""
from .queries import COST_GROUPS, cost_sql, parse_since, runs_sql
from .source import LocalSource, RemoteSource, connect

__all__ = ["COST_GROUPS", "cost_sql", "parse_since", "runs_sql", "LocalSource", "RemoteSource", "connect"]
