"""``lapor-connector log``: read, export and verify the audit log; make its key."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.table import Table
from rich.text import Text

from connector import errors
from connector.adapters import make_adapter
from connector.audit import (
    AuditEntry,
    AuditKey,
    AuditLog,
    export_csv,
    export_jsonl,
    spreadsheet_cell,
)
from connector.cli.support import ConnectorGroup, config_option, exit_code_for, load_configured
from connector.cli.tables import show
from connector.clock import SystemClock
from connector.config import load_audit_settings, load_settings
from connector.lapor.client import LaporClient
from connector.lapor.transport import pacer_key
from connector.mappings import load_mappings
from connector.privacy import open_private, private_dir
from connector.state import StateStore
from connector.timeline import COLUMNS, Timeline, build_timeline, local_time
from connector.workdays import WIB


class AuditLogBroken(errors.FatalError):
    """The audit log's chain, checkpoints or anchor do not verify."""


class PathRefused(errors.ConfigError):
    """A path the command will not use (exit code 3), said in one line naming it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__([problem], str(path))
        self.args = (f"{path}: {problem}",)


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time; without an offset it is read in WIB (Asia/Jakarta), the
    zone LAPOR! itself writes in, whatever the host's ``TZ`` is."""

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
        return moment if moment.tzinfo else moment.replace(tzinfo=WIB)


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
@click.option(
    "--since", type=IsoDateTime(), help="From this time (inclusive; without an offset: WIB)."
)
@click.option(
    "--until", type=IsoDateTime(), help="Until this time (exclusive; without an offset: WIB)."
)
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
            table = _table(rows, f"Audit log ({len(rows)} entries)")
            if output is None:
                show(table)
                return
            with open_private(output, encoding="utf-8") as written:
                show(table, file=written)
            return
        stream: IO[str] = (
            open_private(output, encoding="utf-8", newline="") if output else sys.stdout
        )
        try:
            count = (export_csv if chosen == "csv" else export_jsonl)(entries, stream)
        finally:
            if output:
                stream.close()
        if output:
            click.echo(f"{count} entries written to {output}", err=True)


def _verify_target(
    config_path: Path, state: Path | None, key_file: Path | None, anchor: Path | None
) -> tuple[Path, AuditKey | None, Path | None]:
    """The state, key and anchor to verify: from the options, else from the configuration's
    ``state`` and ``audit`` sections (the LAPOR! section is never read)."""
    if state is not None:
        return state, AuditKey.from_file(key_file) if key_file else None, anchor
    view = load_audit_settings(config_path)
    if key_file is not None:
        key = AuditKey.from_file(key_file)
    elif view.audit.key is not None:
        key = AuditKey.from_hex(view.audit.key.get_secret_value())
    else:
        key = None
    return view.state.path, key, anchor or view.audit.anchor_path


@log_group.command("verify")
@config_option
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The state file (then the configuration is not read at all).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The audit key file (default: audit.key from the configuration).",
)
@click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The anchor file of checkpoints (default: audit.anchor_path).",
)
def log_verify(
    config_path: Path, state_path: Path | None, key_file: Path | None, anchor: Path | None
) -> None:
    """Check the audit log against its key and the anchor; name the first broken entry (exit 4).

    Needs only the state file and the audit key, never the LAPOR! credentials. A missing state
    file is refused (exit 3), never created.

    \b
    Example:
      lapor-connector log verify --state /var/lib/lapor-connector/connector.sqlite \\
          --key-file /run/secrets/audit_key --anchor /var/log/lapor-connector/audit.anchor
      lapor-connector log verify --config /etc/lapor-connector/config.yaml
    """
    path, key, anchor_path = _verify_target(config_path, state_path, key_file, anchor)
    if not path.is_file():
        raise PathRefused(
            path, "no state file there; check --state or state.path (nothing was created)"
        )
    with StateStore(path, SystemClock()) as store:
        log = AuditLog(store, key)
        if key is None and (keys := log.key_ids()):
            raise errors.ConfigError(
                [f"the audit log is MACed with key id {', '.join(sorted(keys))}; pass --key-file"],
                str(path),
            )
        result = log.verify(anchor_path)
    if not result.ok:
        where = f" at entry {result.first_bad_id}" if result.first_bad_id is not None else ""
        raise AuditLogBroken(f"audit log broken{where}: {result.problem}")
    if key is None:
        click.echo(
            f"audit log intact: {result.checked} entries (unkeyed: truncation and recomputed "
            "chains cannot be detected; configure audit.key, see `lapor-connector log keygen`)"
        )
        return
    click.echo(
        f"audit log intact: {result.checked} entries, MACed with key {key.key_id}, "
        f"{result.checkpoints} checkpoints"
    )
    if anchor_path is None:
        click.echo("  no anchor given: a cut tail cannot be detected; pass --anchor", err=True)
    elif result.anchored is not None and result.anchored < result.checked:
        click.echo(
            f"  the anchor covers {result.anchored} entries; the last "
            f"{result.checked - result.anchored} are not anchored yet (next checkpoint)"
        )


@log_group.command("keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("audit.key"),
    show_default=True,
    help="The key file to create (never overwritten).",
)
def log_keygen(out: Path) -> None:
    """Write a new random audit key (32 bytes, hex) to a new file readable only by you (0600).

    \b
    Example:
      lapor-connector log keygen --out /run/secrets/audit_key
    """
    secret = AuditKey.generate()
    private_dir(out.parent)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PathRefused(
            out, "a file is already there; it is never overwritten (choose another --out)"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as stream:
        os.fchmod(fd, 0o600)
        stream.write(secret + "\n")
    click.echo(f"audit key written to {out} (key id {AuditKey.from_hex(secret).key_id})")
    click.echo("reference it from config.yaml (keep the key and the anchor off the state's disk):")
    click.echo(f"  audit:\n    key: ${{file:{out.resolve()}}}")
    click.echo("    anchor_path: /var/log/lapor-connector/audit.anchor")


def _timeline_table(timeline: Timeline) -> Table:
    link = timeline.link
    zone_name = datetime.now(timeline.zone).tzname()
    table = Table(
        title=f"Timeline of LAPOR! {link.tracking_id} (complaint {link.lapor_id}), agency "
        f"{link.agency_id}: matched by {timeline.matched}; times in {zone_name}"
        f"{f' (unit {timeline.unit})' if timeline.unit else ''}",
        title_justify="left",
    )
    for column in (f"at ({zone_name})", "side", "kind", "author", "text"):
        table.add_column(column)
    for event in timeline.events:
        table.add_row(
            local_time(event.at, timeline.zone), event.side, event.kind, event.author or "",
            Text(event.text),
        )  # fmt: skip
    return table


@log_group.command("timeline")
@config_option
@click.argument("complaint_id", metavar="TRACKING_ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="json: one array of objects; csv: the same columns with a header row.",
)
@click.option(
    "--show-content",
    is_flag=True,
    help="Show follow-up texts of a rahasia (secret) complaint too (withheld by default).",
)
def log_timeline(config_path: Path, complaint_id: str, fmt: str, show_content: bool) -> None:
    """Show one complaint's history on both sides, merged in time order: LAPOR!'s status logs,
    data logs, follow-ups and replies, the agency's events, and the connector's audit entries.

    TRACKING_ID is the LAPOR! tracking id; a LAPOR! complaint id or an agency complaint id
    works too (the title says which matched). Times are in the work unit's zone (WIB, WITA or
    WIT, from mappings/units.yaml). No reporter name, e-mail, phone or NIK is shown. A side that
    cannot be read is named in a row of its own, and the exit code says why (5 unavailable,
    6 attention); the other sides are still shown. Reads only: it runs beside the daemon.

    \b
    Example:
      lapor-connector log timeline 1916449
      lapor-connector log timeline 1916449 --format csv > 1916449.csv
    """
    settings = load_configured(config_path)
    if not settings.state.path.is_file():
        raise PathRefused(
            settings.state.path, "no state file there; check state.path (nothing was created)"
        )
    mappings = load_mappings(settings.mappings.path)
    clock = SystemClock()
    with (
        StateStore(settings.state.path, clock) as store,
        LaporClient(settings.lapor, clock) as lapor,
    ):
        lapor.status_aliases = mappings.status_aliases
        # Wait the turn the last committed minute of the daemon left (this command saves none:
        # it writes nothing to the state).
        if not lapor.transport.limiter.restored:
            lapor.transport.limiter.restore(store.pacer_state(pacer_key(settings.lapor)))
        agency = make_adapter(settings.agency, clock) if settings.agency else None
        try:
            timeline = build_timeline(complaint_id, store=store, lapor=lapor, agency=agency,
                                      mappings=mappings, clock=clock, show_content=show_content)  # fmt: skip
        finally:
            if agency is not None:
                agency.close()
    rows = [event.row(timeline.zone) for event in timeline.events]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        writer.writerows([spreadsheet_cell(row[c]) for c in COLUMNS] for row in rows)
    else:
        show(_timeline_table(timeline), markup=False)
    for gap in timeline.gaps:
        click.secho(f"missing: {gap.problem}", err=True, fg="yellow")
    if timeline.gaps:
        sys.stdout.flush()
        click.get_current_context().exit(min(exit_code_for(gap.error) for gap in timeline.gaps))
