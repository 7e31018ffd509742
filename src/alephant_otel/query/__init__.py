"""Reading the store: sources (file or server) and the CLI's queries."""
from .queries import (COST_GROUPS, MARGIN_GROUPS, cost_sql, margin_sql, parse_since, parse_time, path_tree,
                      runs_sql, tree)
from .source import LocalSource, RemoteSource, connect

__all__ = ["COST_GROUPS", "MARGIN_GROUPS", "cost_sql", "margin_sql", "parse_since", "parse_time", "path_tree",
           "runs_sql", "tree", "LocalSource", "RemoteSource", "connect"]
