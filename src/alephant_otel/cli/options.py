"""Options shared by the commands: the store, the output format, the step filters."""
from __future__ import annotations

import click

from ..config import DEFAULT_DB
from .render import FORMATS

db_option = click.option("--db", "db", default=DEFAULT_DB, show_default=True, envvar="ALEPHANT_DB",
                         help="DuckDB store file (env ALEPHANT_DB).")
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="table for people, csv or json (a list of objects) for scripts.")


def filter_options(f):
    """--since, --until, --workspace and --where, for commands that roll steps up."""
    f = click.option("--where", "where", multiple=True, metavar="KEY=VALUE",
                     help="Only steps with property.<name>=<value> (or a context column such as agent_id=x); repeatable.")(f)
    f = click.option("--workspace", help="Only steps of this workspace.")(f)
    f = click.option("--until", help="Only steps that started before: 24h, 7d, or an ISO date/time (UTC).")(f)
    f = click.option("--since", help="Only steps that started since: 24h, 7d, 30m or an ISO date/time (UTC).")(f)
    return f
