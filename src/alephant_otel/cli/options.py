"""Options shared by the commands: the store, the output format, the step filters."""
from __future__ import annotations

import click

from ..config import DEFAULT_DB
from .render import FORMATS



def _check_store(ctx, param, value):
    """A bad --store value stops the command before anything runs, with what is wrong."""
    from ..errors import StoreError
    from ..store.backends import parse_spec

    try:
        parse_spec(value)
    except StoreError as exc:
        raise click.BadParameter(str(exc).removeprefix("--store ")) from None
    return value


db_option = click.option(
    "--store", "--db", "db", default=DEFAULT_DB, show_default=True, envvar=["ALEPHANT_STORE", "ALEPHANT_DB"],
    metavar="STORE", callback=_check_store,
    help="The store: a DuckDB file PATH (or duckdb:PATH), or a DuckLake ducklake:postgres://user@host:port/dbname "
         "(env ALEPHANT_STORE or ALEPHANT_DB; --db is the same option).")
data_path_option = click.option(
    "--data-path", "data_path", type=click.Path(file_okay=False), envvar="ALEPHANT_DATA_PATH",
    help="DuckLake only: directory of its Parquet files, on storage every receiver and reader reaches; "
         "needed when the lake is created, remembered by it after (env ALEPHANT_DATA_PATH).")
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
