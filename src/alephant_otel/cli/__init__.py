"""The `alephant-otel` command line: thin commands over the library, one renderer.

Commands live in serve.py, ingest.py, money.py (cost, margin), runs.py (runs, run, session),
keys.py and admin.py (sql, migrate, reprice); errors the library raises on purpose become one-line messages.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import AlephantError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AlephantError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alephant-otel")
def main():
    """OpenTelemetry traces of AI agents as priced runs, sessions and steps in DuckDB.

    \b
    Start a receiver:      alephant-otel serve
    Cost per session:      alephant-otel cost --by session --since 24h
    Least profitable:      alephant-otel margin --by endpoint
    One run as a tree:     alephant-otel run RUN_ID
    Any SQL:               alephant-otel sql "SELECT * FROM runs LIMIT 5"
    """


from . import admin, ingest, keys, money, runs, serve  # noqa: E402,F401  (registers the commands)
