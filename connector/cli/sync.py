"""Operator commands: sync once, resync, status, the quarantine, and the mappings check."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import track
from rich.table import Table

from connector import errors
from connector.cli.log import IsoDateTime
from connector.cli.support import ConnectorGroup, config_option, load_configured
from connector.cli.tables import emit, show
from connector.clock import SystemClock
from connector.flows import FLOWS, run_flow
from connector.flows.followups_out import resync_agency_followup
from connector.flows.inbound import (
    InboundReport,
    quarantined_complaint,
    resync_complaint,
    run_inbound,
)
from connector.flows.intake_out import IntakeReport, resync_agency_complaint
from connector.mappings import check_mappings, load_mappings
from connector.outbox import Outbox
from connector.progress import Progress
from connector.state import QuarantineEntry, StateStore
from connector.sync import Sync, open_sync
from connector.writer import writer_lock


def _actor(operator: str | None) -> str:
    return f"operator:{operator}" if operator else "operator"


operator_option = click.option(
    "--operator", help="Your name, recorded in the audit log as who did it."
)


@click.command("sync")
@config_option
@click.option(
    "--flow", type=click.Choice(sorted(FLOWS)), multiple=True, help="Only these flows (repeatable)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be created, updated and posted; write nothing.",
)
@operator_option
def sync_command(
    config_path: Path, flow: tuple[str, ...], dry_run: bool, operator: str | None
) -> None:
    """Run every flow once (inbound, intake out, follow-ups out), then exit.

    \b
    Example:
      lapor-connector sync --dry-run
      lapor-connector sync --flow inbound
    """
    settings = load_configured(config_path)
    with (
        open_sync(settings, SystemClock(), actor=_actor(operator), dry_run=dry_run) as sync,
        Progress("LAPOR! complaints synced", sync.clock) as sync.progress,
    ):
        run = RunLedger(sync)
        for name in flow or FLOWS:
            run.report(name, run_flow(sync, name))
        if dry_run:
            click.echo(
                f"dry run: {len(sync.plan.writes)} write(s) planned, none sent; nothing recorded"
            )
            for planned_flow, operation, subject in sync.plan.writes:
                click.echo(f"  {planned_flow}: {operation} {subject}")
            for planned_flow, record_id, problem in sync.plan.quarantined:
                click.echo(f"  {planned_flow}: would quarantine {record_id} ({problem})")
            return
        run.finish()


@click.command("resync")
@config_option
@click.option("--tracking-id", help="One complaint, by its LAPOR! tracking id (must be linked).")
@click.option("--complaint", "lapor_id", type=int, help="One complaint, by its LAPOR! id.")
@click.option(
    "--since", type=IsoDateTime(), help="Every complaint updated on LAPOR! from this time ..."
)
@click.option(
    "--until", type=IsoDateTime(), help="... until this time (exclusive; without an offset: WIB)."
)
@click.option(
    "--failed", is_flag=True, help="Everything that failed: quarantined records and dead writes."
)
@operator_option
def resync_command(config_path: Path, tracking_id: str | None, lapor_id: int | None, since: datetime | None,
                   until: datetime | None, failed: bool, operator: str | None) -> None:  # fmt: skip
    """Sync again by hand: one complaint, a time range, or everything that failed.

    \b
    Example:
      lapor-connector resync --tracking-id 1916449 --operator siti
      lapor-connector resync --since 2026-11-01 --until 2026-11-08
      lapor-connector resync --failed
    """
    if not (tracking_id or lapor_id or since or failed):
        raise click.UsageError(
            "say what to resync: --tracking-id, --complaint, --since/--until or --failed"
        )
    settings = load_configured(config_path)
    with (
        open_sync(settings, SystemClock(), actor=_actor(operator)) as sync,
        Progress("LAPOR! complaints resynced", sync.clock) as sync.progress,
    ):
        if tracking_id:
            link = sync.links.by_tracking_id(tracking_id)
            if link is None or link.lapor_id is None:
                raise errors.ReconcileError(
                    f"tracking id {tracking_id} is not linked yet; resync it with --complaint <LAPOR! id>"
                )
            lapor_id = link.lapor_id
        run = RunLedger(sync)
        if lapor_id is not None:
            run.report("inbound", resync_complaint(sync, lapor_id))
        if since is not None:
            run.report("inbound", run_inbound(sync, since=since, until=until, force=True))
        if failed:
            _retry_failed(sync)
        run.finish()


class RunLedger:
    """What a command's run really did, from the audit log and the outbox, not from hopes.

    Each flow's line says what it created and updated (its report), and what needs attention:
    records quarantined and writes that died during this run, and writes still in doubt after
    it. The command then exits 7 if anything is in doubt, 6 if anything needs attention, 0 only
    when everything was done.
    """

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.since = int(
            sync.store.db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
        )
        self.flows: list[str] = []

    def report(self, flow: str, report: object) -> None:
        """Print one flow's line."""
        counts = {
            k: v for k, v in vars(report).items() if isinstance(v, int) and k != "quarantined"
        }
        attention = self._attention(flow)
        self.flows.append(flow)
        line = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in {**counts, **attention}.items())
        click.echo(f"{flow}: {line}")

    def _attention(self, flow: str) -> dict[str, int]:
        rows = self.sync.store.db.execute(
            "SELECT outcome, count(*) FROM audit_log WHERE id > ? AND flow = ? GROUP BY outcome",
            [self.since, flow],
        ).fetchall()
        outcomes = dict(rows)
        in_doubt = self.sync.store.db.execute(
            "SELECT count(*) FROM outbox WHERE flow = ? AND state = 'in_flight'", [flow]
        ).fetchone()[0]
        return {"quarantined": outcomes.get("quarantined", 0), "dead": outcomes.get("dead", 0),
                "in_doubt": int(in_doubt)}  # fmt: skip

    def finish(self) -> None:
        """Say whether everything was done, and exit accordingly."""
        totals = {k: 0 for k in ("quarantined", "dead", "in_doubt")}
        for flow in dict.fromkeys(self.flows):
            for key, value in self._attention(flow).items():
                totals[key] += value
        if totals["in_doubt"]:
            click.echo(
                f"not done: {totals['in_doubt']} write(s) in doubt (looked up on the next run)",
                err=True,
            )
            click.get_current_context().exit(7)
        if totals["quarantined"] or totals["dead"]:
            click.echo(f"needs attention: {totals['quarantined']} quarantined, {totals['dead']} dead write(s); "
                       "see `lapor-connector quarantine list`", err=True)  # fmt: skip
            click.get_current_context().exit(6)
        click.echo("done")


def _retry_failed(sync: Sync) -> None:
    entries = sync.store.quarantined()
    dead = list(sync.outbox.items("dead"))
    inbound, intake = InboundReport(), IntakeReport()
    for item in track(dead, description="dead writes", console=Console(stderr=True)):
        if sync.outbox.retry(item.id):
            refreshed = sync.outbox.get(item.key)
            if refreshed is not None:
                sync.execute(refreshed)
    for entry in track(entries, description="quarantined", console=Console(stderr=True)):
        _replay(sync, entry, inbound, intake)
    click.echo(f"retried {len(dead)} dead write(s); replayed {len(entries)} quarantined record(s); "
               f"{len(sync.store.quarantined())} still quarantined")  # fmt: skip


def _replay(
    sync: Sync, entry: QuarantineEntry, inbound: InboundReport, intake: IntakeReport
) -> None:
    source, record_id = entry.source, entry.record_id
    if not record_id:
        return
    lapor_id = quarantined_complaint(source, record_id)
    if lapor_id is not None:  # a complaint, or one of its files
        resync_complaint(sync, lapor_id, inbound)
    elif source == "intake_out":
        resync_agency_complaint(sync, record_id, intake)
    elif source == "followups_out":
        complaint_id = entry.raw.get("complaint_id") if isinstance(entry.raw, dict) else None
        if isinstance(complaint_id, str):
            resync_agency_followup(sync, complaint_id, record_id)


def _print(report: object) -> None:
    click.echo(", ".join(f"{k} {v}" for k, v in vars(report).items() if isinstance(v, int)))


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for monitoring): --format json.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    show_default=True, help="table for people, json or csv for tools.",
)  # fmt: skip
@click.option(
    "--check",
    is_flag=True,
    help="Exit 6 unless healthy: no dead write, quarantine within --max-quarantined, every flow "
    "run recently and without failing.",
)
@click.option(
    "--max-quarantined", type=int, default=0, show_default=True,
    help="Open quarantined records tolerated by --check.",
)  # fmt: skip
@click.option(
    "--stale-intervals", type=int, default=3, show_default=True,
    help="A flow whose last run is older than this many of its intervals is unhealthy.",
)  # fmt: skip
def status_command(
    config_path: Path, as_json: bool, fmt: str, check: bool, max_quarantined: int,
    stale_intervals: int,
) -> None:  # fmt: skip
    """Show each flow's last run, watermark, pending, quarantined and dead writes, and whether
    all is healthy.

    \b
    Example:
      lapor-connector status
      lapor-connector status --json | jq .healthy
      lapor-connector status --format csv          # one line per flow
      lapor-connector status --check || alert "lapor-connector needs attention"
    """
    settings = load_configured(config_path)
    if not settings.state.path.exists():
        raise errors.ConfigError(
            [
                f"state.path: {settings.state.path} does not exist; nothing has run with this configuration yet"
            ]
        )
    with StateStore(settings.state.path, SystemClock()) as store:
        report = flow_status(store)
        problems = health_problems(store, report, settings, max_quarantined, stale_intervals)
    report["healthy"], report["problems"] = not problems, problems
    if as_json or fmt == "json":
        click.echo(json.dumps(report, indent=2))
        if check and problems:
            click.get_current_context().exit(6)
        return
    if fmt == "csv":
        columns = [
            "flow",
            "last_run",
            "watermark",
            "pending",
            "quarantined",
            "dead",
            "oldest_unsynced",
        ]
        emit([{"flow": name, **row} for name, row in report["flows"].items()], columns, "csv")
        if check and problems:
            click.get_current_context().exit(6)
        return
    table = Table(title=f"Sync status ({settings.state.path})", title_justify="left")
    for column in (
        "flow",
        "last run (UTC)",
        "watermark (UTC)",
        "pending",
        "quarantined",
        "dead",
        "oldest unsynced",
    ):
        table.add_column(column)
    for name, row in report["flows"].items():
        table.add_row(
            name,
            *[
                str(row[k] or "")
                for k in (
                    "last_run",
                    "watermark",
                    "pending",
                    "quarantined",
                    "dead",
                    "oldest_unsynced",
                )
            ],
        )
    show(table)
    click.echo(f"linked complaints: {report['linked']}")
    for problem in problems:
        click.echo(f"unhealthy: {problem}")
    if not problems:
        click.echo("healthy")
    elif check:
        click.get_current_context().exit(6)


def health_problems(
    store: StateStore, report: dict[str, Any], settings: Any, max_quarantined: int,
    stale_intervals: int,
) -> list[str]:  # fmt: skip
    """Why the connector needs attention (empty when healthy)."""
    problems = []
    now = store.clock.now()
    intervals = {
        "inbound": settings.schedule.inbound_seconds,
        "intake_out": settings.schedule.intake_out_seconds,
        "followups_out": settings.schedule.followups_out_seconds,
    }
    quarantined = sum(row["quarantined"] for row in report["flows"].values())
    if quarantined > max_quarantined:
        problems.append(
            f"{quarantined} quarantined record(s) (see `lapor-connector quarantine list`)"
        )
    for name, row in report["flows"].items():
        if row["dead"]:
            problems.append(f"{name}: {row['dead']} dead write(s)")
        if name not in intervals:
            continue  # not a scheduled flow (SLA pushes, reconcile repairs): its writes count
        if row["last_run"] is None:
            problems.append(f"{name}: has never run")
            continue
        age = (now - datetime.fromisoformat(row["last_run"])).total_seconds()
        if age > stale_intervals * intervals.get(name, 60):
            problems.append(
                f"{name}: last ran {int(age)} s ago (more than {stale_intervals} intervals)"
            )
        if row["last_outcome"] == "failed":
            problems.append(f"{name}: its last run failed (see the daemon's log)")
    return problems


def flow_status(store: StateStore) -> dict[str, Any]:
    """Per flow: last run, watermark, pending, quarantined, dead, oldest unsynced write."""
    flows: dict[str, Any] = {}
    runs = store.flow_runs()
    others = {
        row[0]
        for table, column in (("outbox", "flow"), ("quarantine", "source"))
        for row in store.db.execute(f"SELECT DISTINCT {column} FROM {table}")  # noqa: S608 (our names)
    }
    # the three flows always; the SLA pushes, the reconcile repairs, ... once they have any
    for name in [*FLOWS, *sorted(others - set(FLOWS))]:
        cursor = store.db.execute(
            "SELECT watermark, updated_at FROM cursors WHERE flow = ?", [name]
        ).fetchone()
        pending = store.db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE flow = ? AND state IN ('pending', 'failed', 'in_flight')",
            [name],
        ).fetchone()
        dead = store.db.execute(
            "SELECT count(*) FROM outbox WHERE flow = ? AND state = 'dead'", [name]
        ).fetchone()[0]
        quarantined = store.db.execute(
            "SELECT count(*) FROM quarantine WHERE source = ? AND status = 'open'", [name]
        ).fetchone()[0]
        run = runs.get(name, {})
        flows[name] = {
            "last_run": run.get("finished_at"),
            "last_outcome": run.get("outcome"),
            "watermark": cursor[0] if cursor else None,
            "pending": pending[0],
            "quarantined": quarantined,
            "dead": dead,
            "oldest_unsynced": pending[1],
        }
    linked = store.db.execute("SELECT count(*) FROM links").fetchone()[0]
    return {"flows": flows, "linked": linked}


@click.group("quarantine", cls=ConnectorGroup)
def quarantine_group() -> None:
    """Records set aside with a reason, and writes that ran out of retries."""


@quarantine_group.command("list")
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    show_default=True, help="table for people, json or csv for tools.",
)  # fmt: skip
def quarantine_list(config_path: Path, fmt: str) -> None:
    """List quarantined records (with why) and dead writes.

    \b
    Example:
      lapor-connector quarantine list
      lapor-connector quarantine list --format json | jq '.[] | select(.kind == "record")'
    """
    settings = load_configured(config_path)
    with StateStore(settings.state.path, SystemClock()) as store:
        entries, dead = store.quarantined(), list(Outbox(store).items("dead"))
    if fmt != "table":
        rows = [{"kind": "record", "id": e.id, "flow": e.source, "record": e.record_id,
                 "problems": "; ".join(e.problems), "times_seen": e.times_seen,
                 "last_seen": e.last_seen.isoformat()} for e in entries]  # fmt: skip
        rows += [{"kind": "dead_write", "id": i.id, "flow": i.flow, "operation": i.operation,
                  "record": i.subject, "attempts": i.attempts, "problems": i.last_error or ""}
                 for i in dead]  # fmt: skip
        columns = ["kind", "id", "flow", "record", "operation", "problems", "times_seen",
                   "attempts", "last_seen"]  # fmt: skip
        emit(rows, columns, fmt)
        return
    records = Table(title=f"Quarantined records ({len(entries)})", title_justify="left")
    for column in ("id", "flow", "record", "problems", "seen", "last seen (UTC)"):
        records.add_column(column)
    for e in entries:
        records.add_row(
            str(e.id),
            e.source,
            e.record_id or "",
            "; ".join(e.problems),
            str(e.times_seen),
            e.last_seen.isoformat()[:19],
        )
    writes = Table(title=f"Dead writes ({len(dead)})", title_justify="left")
    for column in ("id", "flow", "operation", "subject", "attempts", "error"):
        writes.add_column(column)
    for item in dead:
        writes.add_row(
            str(item.id),
            item.flow,
            item.operation,
            item.subject,
            str(item.attempts),
            item.last_error or "",
        )
    show(records, writes)


@quarantine_group.command("retry")
@config_option
@click.option(
    "--record", "records", type=int, multiple=True, help="A quarantined record's id (repeatable)."
)
@click.option("--write", "writes", type=int, multiple=True, help="A dead write's id (repeatable).")
@operator_option
def quarantine_retry(
    config_path: Path, records: tuple[int, ...], writes: tuple[int, ...], operator: str | None
) -> None:
    """Replay quarantined records and retry dead writes (after fixing the cause).

    \b
    Example:
      lapor-connector quarantine retry --record 12 --write 7 --operator siti
    """
    settings = load_configured(config_path)
    with open_sync(settings, SystemClock(), actor=_actor(operator)) as sync:
        entries = []
        for entry_id in records:
            entry = sync.store.quarantine_entry(entry_id)
            if entry is None or entry.status != "open":
                raise click.BadParameter(
                    f"no open quarantined record {entry_id}; see `lapor-connector quarantine list`",
                    param_hint="--record",
                )
            entries.append(entry)
        for write_id in writes:
            if not sync.outbox.retry(write_id):
                raise click.BadParameter(
                    f"no dead or failed write {write_id}", param_hint="--write"
                )
        not_done = in_doubt = 0
        for entry in entries:
            _replay(sync, entry, InboundReport(), IntakeReport())
            after = sync.store.quarantine_entry(entry.id)
            if after is not None and after.status == "resolved":
                click.echo(f"record {entry.id} ({entry.source} {entry.record_id}): resolved")
            else:
                not_done += 1
                why = "; ".join(after.problems) if after is not None else "not replayable"
                click.echo(
                    f"record {entry.id} ({entry.source} {entry.record_id}): still quarantined: {why}"
                )
        for item in sync.outbox.due():
            if item.id not in writes:
                continue
            outcome = sync.execute(item)
            final = sync.outbox.get(outcome.item.key) or outcome.item
            state = {"in_flight": "in doubt (looked up on the next run)"}.get(
                final.state, final.state
            )
            code = (
                f" ({final.last_error_code})"
                if final.state != "done" and final.last_error_code
                else ""
            )
            click.echo(f"write {item.id} ({item.operation} {item.subject}): {state}{code}")
            in_doubt += final.state == "in_flight"
            not_done += final.state not in ("done", "in_flight")
        if in_doubt:
            click.get_current_context().exit(7)
        if not_done:
            click.echo(f"{not_done} item(s) not done", err=True)
            click.get_current_context().exit(6)


@quarantine_group.command("ack")
@config_option
@click.option(
    "--record", "records", type=int, multiple=True, help="A quarantined record's id (repeatable)."
)
@click.option("--write", "writes", type=int, multiple=True, help="A dead write's id (repeatable).")
@operator_option
def quarantine_ack(
    config_path: Path, records: tuple[int, ...], writes: tuple[int, ...], operator: str | None
) -> None:
    """Acknowledge records or writes that will not be synced (kept, on the record, in the audit log).

    \b
    Example:
      lapor-connector quarantine ack --write 7 --operator siti
    """
    settings = load_configured(config_path)
    with (
        writer_lock(settings.state.path, "quarantine ack"),
        StateStore(settings.state.path, SystemClock()) as store,
    ):
        from connector.audit import AuditLog

        audit, outbox = AuditLog.configured(store, settings.audit), Outbox(store)
        with store.transaction():
            for entry_id in records:
                if not store.acknowledge_quarantine(entry_id):
                    raise click.BadParameter(
                        f"no open quarantined record {entry_id}", param_hint="--record"
                    )
                audit.append(actor=_actor(operator), flow="quarantine", direction="local", action="acknowledge_record",
                             outcome="skipped", changed_fields=["status"])  # fmt: skip
        for write_id in writes:
            with store.transaction():
                if not outbox.acknowledge(write_id):
                    raise click.BadParameter(f"no dead write {write_id}", param_hint="--write")
                audit.append(actor=_actor(operator), flow="quarantine", direction="local", action="acknowledge_write",
                             outcome="skipped", changed_fields=["state"])  # fmt: skip
        audit.checkpoint()
    click.echo(f"acknowledged {len(records)} record(s) and {len(writes)} write(s)")


@click.group("mappings", cls=ConnectorGroup)
def mappings_group() -> None:
    """The mapping files in mappings/."""


@mappings_group.command("check")
@config_option
def mappings_check(config_path: Path) -> None:
    """Check the mappings against both sides' master data; list every gap (exit code 3).

    \b
    Example:
      lapor-connector mappings check
    """
    settings = load_configured(config_path)
    mappings = load_mappings(settings.mappings.path)
    with open_sync(settings, SystemClock(), writer=False) as sync:
        problems = check_mappings(
            mappings,
            lapor_categories=sync.lapor.categories(),
            lapor_institutions=sync.lapor.institutions(),
            lapor_classifications=sync.lapor.classifications(),
            agency_categories=sync.agency.categories(),
            agency_statuses=sync.agency.statuses(),
            agency_units=sync.agency.units(),
        )
    if problems:
        raise errors.ConfigError(problems, str(settings.mappings.path))
    click.echo(
        f"{settings.mappings.path}: every value on both sides is mapped (version {mappings.version})"
    )
    click.echo(f"  {mappings.describe_on_lapor_change()}")


COMMANDS = (sync_command, resync_command, status_command, quarantine_group, mappings_group)
