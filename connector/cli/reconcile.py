"""``lapor-connector reconcile``: the full comparison of both sides and the links, and its repairs."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from connector.cli.support import config_option, load_configured
from connector.cli.tables import emit, show
from connector.clock import SystemClock
from connector.reconcile import Comparison, Finding, reconcile_all
from connector.reconcile_fix import Repair, repair_all
from connector.sync import open_sync


@click.command("reconcile")
@config_option
@click.option("--fix", is_flag=True, help="Repair what was found, through the outbox (audited).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="json: one array of {kind, lapor_id, agency_id, detail, fix}; csv: those columns.",
)
@click.option("--operator", help="Your name, recorded in the audit log as who repaired it.")
def reconcile_command(config_path: Path, fix: bool, output: str, operator: str | None) -> None:
    """Compare the LAPOR! inbox, the agency system and the links; report every drift.

    Kinds: missing_in_agency, not_filed, lapor_gone, agency_gone, status_drift,
    followup_drift, flag_drift (docs/reconcile.md). Without --fix nothing is written
    (it runs beside the daemon). Exit 0: no drift, or all of it repaired; 6: drift left
    (not fixed, or only a person can fix it); 7: a repair's outcome is in doubt.

    \b
    Example:
      lapor-connector reconcile
      lapor-connector reconcile --format json | jq '.[].kind'
      lapor-connector reconcile --fix --operator siti
    """
    settings = load_configured(config_path)
    actor = f"operator:{operator}" if operator else "operator"
    with open_sync(settings, SystemClock(), actor=actor, dry_run=not fix) as sync:
        comparison = reconcile_all(sync)
        findings = comparison.findings
        repairs: list[Repair] = repair_all(sync, findings) if fix else []
    if output == "json":
        click.echo(json.dumps([f.as_json() for f in findings], ensure_ascii=False, indent=2))
    elif output == "csv":
        emit(
            [f.as_json() for f in findings],
            ["kind", "lapor_id", "agency_id", "detail", "fix"],
            "csv",
        )
    else:
        _table(findings, repairs)
    _summary(comparison, repairs, fix, to_stderr=output != "table")


def _table(findings: list[Finding], repairs: list[Repair]) -> None:
    if not findings:
        return
    table = Table(title=f"Drift ({len(findings)})", title_justify="left")
    columns = ["kind", "LAPOR! id", "tracking id", "agency id", "detail", "fix"]
    for column in columns + (["result"] if repairs else []):
        table.add_column(column)
    for index, f in enumerate(findings):
        row = [
            f.kind,
            str(f.lapor_id or ""),
            f.tracking_id or "",
            f.agency_id or "",
            f.detail,
            f.fix,
        ]
        table.add_row(*row, *([repairs[index]] if repairs else []))
    show(table)


def _summary(comparison: Comparison, repairs: list[Repair], fix: bool, *, to_stderr: bool) -> None:
    findings = comparison.findings
    ctx = click.get_current_context()
    line = (f"compared {comparison.compared} complaint(s), {comparison.pending} left to the flows "
            f"(not read by them yet, a write open, or quarantined), {comparison.lapor_requests} LAPOR! request(s)")  # fmt: skip
    click.echo(line, err=to_stderr)
    if not findings:
        click.echo("no drift", err=to_stderr)
        return
    if not fix:
        click.echo(f"{len(findings)} drift(s) found; `lapor-connector reconcile --fix` repairs them",
                   err=True)  # fmt: skip
        ctx.exit(6)
    counts = {state: repairs.count(state) for state in ("fixed", "failed", "in_doubt", "manual")}
    click.echo(
        ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items()), err=to_stderr
    )
    if counts["in_doubt"]:
        ctx.exit(7)
    if counts["failed"] or counts["manual"]:
        ctx.exit(6)
