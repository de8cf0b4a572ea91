"""``lapor-connector log``: read, export and verify the audit log."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.table import Table

from connector import errors
from connector.audit import AuditEntry, AuditLog, export_csv, export_jsonl
from connector.cli_support import ConnectorGroup, config_option
from connector.clock import SystemClock
from connector.config import load_settings
from connector.state import StateStore


class AuditLogBroken(errors.FatalError):
    """The audit log's hash chain does not verify."""


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time; without an offset it is read as UTC."""

    name = "ISO-DATETIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T08:00:00+07:00",
                param,
                ctx,
            )
        return (
            moment if moment.tzinfo else moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
        )


def _table(entries: list[AuditEntry], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "at (UTC)",
        "actor",
        "flow",
        "dir",
        "tracking",
        "lapor",
        "agency",
        "action",
        "outcome",
        "error",
        "fields",
    ):
        table.add_column(column)
    for e in entries:
        table.add_row(
            str(e.id), e.at[:19], e.actor, e.flow, e.direction, e.tracking_id or "", str(e.lapor_id or ""),
            e.agency_id or "", e.action, e.outcome, e.error_code or "", e.changed_fields,
        )  # fmt: skip
    return table


def _open(config_path: Path) -> StateStore:
    return StateStore(load_settings(config_path).state.path, SystemClock())


@click.group("log", cls=ConnectorGroup, invoke_without_command=True)
@config_option
@click.option("--complaint", "lapor_id", type=int, help="LAPOR! complaint id.")
@click.option("--tracking-id", help="LAPOR! tracking id.")
@click.option("--agency-id", help="Complaint id in the agency system.")
@click.option("--flow", help="Flow name, e.g. inbound, followups_out, intake_out.")
@click.option("--outcome", help="ok, failed, ambiguous, quarantined, skipped or dead.")
@click.option("--since", type=IsoDateTime(), help="From this time (inclusive).")
@click.option("--until", type=IsoDateTime(), help="Until this time (exclusive).")
@click.option("--limit", type=int, help="At most this many entries.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    help="Default: table on a terminal, else jsonl.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
@click.pass_context
def log_group(
    ctx: click.Context, /, config_path: Path, fmt: str | None, output: Path | None, **filters: Any
) -> None:
    """Show or export the audit log, filtered (oldest first).

    Entries hold ids, actions, outcomes and the names of changed fields, never personal data.
    CSV exports are safe to open in a spreadsheet (no formula runs).

    \b
    Example:
      lapor-connector log --tracking-id 1916449
      lapor-connector log --since 2026-11-01 --format csv --output audit-november.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    with _open(config_path) as store:
        entries = AuditLog(store).entries(**filters)
        chosen = fmt or ("table" if output is None and sys.stdout.isatty() else "jsonl")
        if chosen == "table":
            rows = list(entries)
            Console(file=output.open("w", encoding="utf-8") if output else None).print(
                _table(rows, f"Audit log ({len(rows)} entries)")
            )
            return
        stream: IO[str] = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            count = (export_csv if chosen == "csv" else export_jsonl)(entries, stream)
        finally:
            if output:
                stream.close()
        if output:
            click.echo(f"{count} entries written to {output}", err=True)


@log_group.command("verify")
@config_option
def log_verify(config_path: Path) -> None:
    """Recompute the audit log's hash chain and report the first broken entry (exit code 4).

    \b
    Example:
      lapor-connector log verify --config /etc/lapor-connector/config.yaml
    """
    with _open(config_path) as store:
        result = AuditLog(store).verify()
    if not result.ok:
        raise AuditLogBroken(f"audit log broken at entry {result.first_bad_id}: {result.problem}")
    click.echo(f"audit log intact: {result.checked} entries")


@log_group.command("timeline")
@config_option
@click.argument("tracking_id")
def log_timeline(config_path: Path, tracking_id: str) -> None:
    """Show one complaint's whole history on both sides.

    \b
    Example:
      lapor-connector log timeline 1916449
    """
    with _open(config_path) as store:
        entries = AuditLog(store).timeline(tracking_id)
    if not entries:
        click.echo(f"no audit entries for tracking id {tracking_id}")
        return
    Console().print(_table(entries, f"Timeline of {tracking_id}"))
