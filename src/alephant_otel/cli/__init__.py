"""The `alephant-otel` command line: thin commands over the library, one renderer."""
from __future__ import annotations

import logging
import sys

import click

from .. import __version__
from ..config import DEFAULT_DB, DEFAULT_GRPC_PORT, DEFAULT_HOST
from ..errors import AlephantError
from ..pricing import COST_PREFERENCES
from ..query import COST_GROUPS, connect, cost_sql, parse_since, runs_sql
from .render import format_option, render

db_option = click.option("--db", "db", default=DEFAULT_DB, show_default=True, envvar="ALEPHANT_DB",
                         help="DuckDB store file (env ALEPHANT_DB).")


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
    Any SQL:               alephant-otel sql "SELECT * FROM runs LIMIT 5"
    """


@main.command()
@db_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="ALEPHANT_HOST",
              help="Address to listen on (env ALEPHANT_HOST).")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=DEFAULT_GRPC_PORT, show_default=True,
              envvar="ALEPHANT_GRPC_PORT", help="OTLP/gRPC port; 0 picks a free one (env ALEPHANT_GRPC_PORT).")
@click.option("--mapping", "mapping", type=click.Path(dir_okay=False), envvar="ALEPHANT_MAPPING",
              help="YAML rules for custom spans, applied before the built-in conventions (env ALEPHANT_MAPPING).")
@click.option("--cost-preference", type=click.Choice(COST_PREFERENCES), default="provided", show_default=True,
              envvar="ALEPHANT_COST_PREFERENCE",
              help="Which model cost counts when a span brings its own and we compute one too (env ALEPHANT_COST_PREFERENCE).")
def serve(db, host, grpc_port, mapping, cost_preference):
    """Receive OTLP traces and store them as priced steps.

    \b
    Example:
      alephant-otel serve --db ./alephant.duckdb --grpc-port 4317
      alephant-otel serve --mapping examples/rules/payments.yaml
    """
    from ..mapping.rules import RuleSet
    from ..receiver.server import Server

    rules = RuleSet.load(mapping) if mapping else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = Server(db, host, grpc_port, rules=rules, cost_preference=cost_preference).start()
    endpoint = f"http://{server.grpc.address}"
    click.echo(f"alephant-otel {__version__}: OTLP/gRPC listening on {server.grpc.address}, storing in {db}")
    if rules is not None:
        click.echo(f"Mapping rules: {len(rules.rules)} from {mapping}")
    click.echo("Point an agent at it:")
    click.echo(f"  export OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}")
    click.echo("  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
    click.echo("  export OTEL_TRACES_EXPORTER=otlp")
    click.echo("  export OTEL_EXPORTER_OTLP_HEADERS=alephant-agent-id=my-agent   # optional: tag every span")
    click.echo("Stop with Ctrl-C (SIGINT) or SIGTERM; queued spans are written before exit.", err=False)
    sys.stdout.flush()
    server.serve_forever()


@main.command()
@click.option("--by", "by", type=click.Choice(list(COST_GROUPS)), required=True, help="What to group cost by.")
@click.option("--since", help="Only steps that started since: 24h, 7d, 30m or an ISO date/time (UTC).")
@db_option
@format_option
def cost(by, since, db, fmt):
    """Cost, tokens and unpriced steps grouped by run, session, agent, user, model or prompt.

    \b
    Example:
      alephant-otel cost --by agent --since 7d
      alephant-otel cost --by model --format json
    """
    sql, params = cost_sql(by, parse_since(since) if since else None)
    _run(db, sql, params, fmt)


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
    sql, params = runs_sql(session, limit)
    _run(db, sql, params, fmt)


@main.command()
@click.argument("query")
@db_option
@format_option
def sql(query, db, fmt):
    """Run a read-only SQL query over the views (steps, runs, sessions, agents, spans).

    \b
    Example:
      alephant-otel sql "SELECT model, sum(model_cost) FROM steps GROUP BY model"
    """
    _run(db, query, [], fmt)


@main.command()
@db_option
def migrate(db):
    """Upgrade a store file to this version's schema (serve does this too).

    \b
    Example:
      alephant-otel migrate --db ./alephant.duckdb
    """
    from ..store import open_for_writing

    open_for_writing(db).close()
    click.echo(f"{db} is at the current schema")


def _run(db, sql_text, params, fmt):
    source = connect(db)
    try:
        table = source.query(sql_text, params)
    finally:
        source.close()
    render(table, fmt)
