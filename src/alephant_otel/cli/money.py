"""`alephant-otel cost` and `alephant-otel margin`."""
from __future__ import annotations

import click

from ..query import COST_GROUPS, MARGIN_GROUPS
from . import main
from .options import db_option, filter_options, format_option
from .render import render, run_named


@main.command()
@click.option("--by", "by", required=True, metavar="LEVEL",
              help=f"One of {', '.join(COST_GROUPS)}.")
@filter_options
@db_option
@format_option
def cost(by, since, until, workspace, where, db, fmt):
    """Cost (model, tool/API, payments, fees), revenue and margin by any level, most expensive first.

    One row per group and currency; a total line per currency in table format.

    \b
    Example:
      alephant-otel cost --by agent --since 7d
      alephant-otel cost --by property.tier --where property.region=eu --format json
    """
    table = run_named(db, "cost", by=by, since=since, until=until, workspace=workspace, where=list(where))
    render(table, fmt, totals=True)


@main.command()
@click.option("--by", "by", required=True, metavar="LEVEL",
              help=f"Usually one of {', '.join(MARGIN_GROUPS)}; any level of `cost --by` works, property.<name> too.")
@filter_options
@db_option
@format_option
def margin(by, since, until, workspace, where, db, fmt):
    """Known margin (revenue - all costs) by endpoint, agent, workflow, run (or any level), least profitable first.

    `margin_complete` is false where unpriced steps make the cost a lower bound.

    \b
    Example:
      alephant-otel margin --by endpoint --since 30d
      alephant-otel margin --by property.plan
    """
    table = run_named(db, "margin", by=by, since=since, until=until, workspace=workspace, where=list(where))
    render(table, fmt, totals=True)
