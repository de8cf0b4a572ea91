"""``lapor-connector sla``: every open complaint's deadline, and the monthly recap per unit."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from connector import errors
from connector.cli.support import ConnectorGroup, config_option, load_configured
from connector.cli.tables import show
from connector.clock import SystemClock
from connector.mappings import load_mappings
from connector.sla import SlaRow, SummaryRow, open_rows, summary
from connector.state import StateStore

_STATE_STYLE = {"overdue": "bold red", "at_risk": "yellow", "on_time": "green"}
_FORMAT = click.option(
    "--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="table for people, csv or json for tools.",
)  # fmt: skip


def _open_state(config_path: Path) -> tuple[Any, StateStore]:
    settings = load_configured(config_path)
    if not settings.state.path.exists():
        raise errors.ConfigError(
            [
                f"state.path: {settings.state.path} does not exist; nothing has synced with this "
                "configuration yet (run `lapor-connector run` or `lapor-connector demo` first)"
            ]
        )
    return settings, StateStore(settings.state.path, SystemClock())


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@click.group(
    "sla", cls=ConnectorGroup, invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)  # fmt: skip
@config_option
@click.option("--unit", help="Only this agency work unit.")
@click.option(
    "--at-risk-days", type=click.IntRange(0, 30), default=None,
    help="At risk when this many working days or fewer are left (default: sla.at_risk_days, 2).",
)  # fmt: skip
@_FORMAT
@click.option("--check", is_flag=True, help="Exit 6 when any complaint is overdue.")
@click.pass_context
def sla_group(
    ctx: click.Context, config_path: Path, unit: str | None, at_risk_days: int | None,
    output: str, check: bool,
) -> None:  # fmt: skip
    """List every open complaint's current SLA stage, most urgent first.

    Stages, in Indonesian working days (hari kerja, in the unit's time zone): verify (3 from
    submission), first_followup (5 from disposition), auto_close (10 from the institution's last
    follow-up), ceiling (60 days from submission). The due date is LAPOR!'s own when it sends
    one (due_source lapor), the connector's count otherwise (computed). Reads the state only:
    no request is made.

    \b
    Example:
      lapor-connector sla --at-risk-days 1            # what breaches tomorrow
      lapor-connector sla --unit SEKSI-SP --format csv > sla.csv
      lapor-connector sla summary                     # the monthly recap per unit
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {**(ctx.obj or {}), "sla_config": config_path, "sla_format": output}
        return
    settings, store = _open_state(config_path)
    days = settings.sla.at_risk_days if at_risk_days is None else at_risk_days
    calendar = load_mappings(settings.mappings.path).calendar
    with store:
        rows = open_rows(store, calendar, store.clock.now(), days, unit=unit)
    _print_rows(rows, output, days)
    if check and any(r.state == "overdue" for r in rows):
        ctx.exit(6)


def _print_rows(rows: list[SlaRow], output: str, at_risk_days: int) -> None:
    if output == "json":
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if output == "csv":
        columns = ["tracking_id", "lapor_id", "agency_id", "unit", "stage", "due",
                   "due_source", "working_days_left", "state"]  # fmt: skip
        _csv([r.as_json() for r in rows], columns)
        return
    table = Table(title=f"Open complaints by due date (at risk: ≤ {at_risk_days} working days)",
                  title_justify="left")  # fmt: skip
    for column in ("tracking id", "LAPOR! id", "agency id", "unit", "stage", "due",
                   "source", "working days left", "state"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for r in rows:
        due = r.due.isoformat()
        if r.computed_due is not None:
            due += f" (we count {r.computed_due.isoformat()})"
        table.add_row(
            r.tracking_id or "", str(r.lapor_id), r.agency_id or "", r.unit or "", r.stage, due,
            r.due_source, str(r.working_days_left), f"[{_STATE_STYLE[r.state]}]{r.state}[/]",
        )  # fmt: skip
    show(table)
    console = Console()
    counts = {s: sum(r.state == s for r in rows) for s in ("overdue", "at_risk", "on_time")}
    console.print(
        f"{len(rows)} open: {counts['overdue']} overdue, {counts['at_risk']} at risk, "
        f"{counts['on_time']} on time"
    )


@sla_group.command("summary")
@click.pass_context
def summary_command(ctx: click.Context) -> None:
    """The recap per unit and month of submission: received, resolved (Selesai), closed
    otherwise (archived, rejected), open, overdue now, and the median working days from
    disposition to the first follow-up. Options go before the word summary.

    \b
    Example:
      lapor-connector sla summary
      lapor-connector sla --format csv summary > rekap.csv
    """
    config_path = ctx.obj["sla_config"]
    output = ctx.obj["sla_format"]
    settings, store = _open_state(config_path)
    calendar = load_mappings(settings.mappings.path).calendar
    with store:
        rows = summary(store, calendar, store.clock.now(), settings.sla.at_risk_days)
    print_summary(rows, output)


def print_summary(rows: list[SummaryRow], output: str, console: Console | None = None) -> None:
    """Print the recap as a table, CSV or JSON."""
    if output == "json":
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if output == "csv":
        columns = ["unit", "month", "received", "resolved", "closed_other", "open", "overdue",
                   "median_days_to_first_followup"]  # fmt: skip
        _csv([r.as_json() for r in rows], columns)
        return
    table = Table(title="SLA recap per unit and month of submission", title_justify="left")
    for column in ("unit", "month", "received", "resolved", "closed otherwise", "open",
                   "overdue", "median working days to first follow-up"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for r in rows:
        median = (
            ""
            if r.median_days_to_first_followup is None
            else f"{r.median_days_to_first_followup:g}"
        )
        table.add_row(r.unit or "", r.month, str(r.received), str(r.resolved),
                      str(r.closed_other), str(r.open), str(r.overdue), median)  # fmt: skip
    if console is not None:
        console.print(table)
    else:
        show(table)
