"""`alephant-otel runs`, `run RUN_ID` and `session SESSION_ID`."""
from __future__ import annotations

import click

from ..errors import QueryError
from ..query import path_tree, tree
from . import main
from .options import db_option, format_option
from .render import render, render_path_tree, render_run_tree, run_named


@main.command()
@click.option("--session", help="Only runs of this session.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many runs, newest first.")
@db_option
@format_option
def runs(session, limit, db, fmt):
    """List runs, newest first.

    \b
    Example:
      alephant-otel runs --session sess_42
    """
    render(run_named(db, "runs", session=session, limit=limit), fmt)


@main.command()
@click.argument("run_id")
@db_option
@format_option
def run(run_id, db, fmt):
    """One run as a tree of steps: kind, duration, tokens, cost, revenue, policy, status.

    \b
    Example:
      alephant-otel run run_7f3a
      alephant-otel run run_7f3a --format json
    """
    rows = run_named(db, "run", run_id=run_id).to_pylist()
    if not rows:
        raise QueryError(f"no run {run_id!r}")
    render_run_tree(run_id, tree(rows), rows, fmt)


@main.command()
@click.argument("session_id")
@db_option
@format_option
def session(session_id, db, fmt):
    """A session: its runs, and its path tree from alephant.session.path segments.

    Each path node shows its descendants' latency (last end - first start), cost and steps.

    \b
    Example:
      alephant-otel session sess_42
    """
    runs_table = run_named(db, "runs", session=session_id, limit=10_000)
    rows = run_named(db, "session", session_id=session_id).to_pylist()
    if not rows:
        raise QueryError(f"no session {session_id!r}")
    render_path_tree(session_id, runs_table, path_tree(rows), fmt)
