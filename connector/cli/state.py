"""``lapor-connector state``: look after the state file itself."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import click

from connector.cli.support import ConnectorGroup, config_option, load_configured
from connector.clock import SystemClock


@click.group("state", cls=ConnectorGroup)
def state_group() -> None:
    """The state file: back it up, recover a lost one, prune what the retention no longer allows."""


@state_group.command("backup")
@config_option
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The state file (default: state.path from the configuration).",
)
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def state_backup(config_path: Path, state_path: Path | None, force: bool, dest: Path) -> None:
    """Copy the state file to DEST (created 0600), safely while the daemon runs.

    SQLite's online backup: one consistent snapshot, no writer lock taken, the daemon goes on
    writing. Only the state section of the configuration is read (no credential is needed).
    DEST is never overwritten unless --force is given. Restore: stop the daemon, copy the
    backup to state.path (remove the old -wal and -shm files), start it (docs/deploy.md).

    \b
    Example:
      lapor-connector state backup --config /etc/lapor-connector/config.yaml \\
          /var/backups/lapor-connector/state-$(date +%F).sqlite
    """
    from connector.backup import backup_state
    from connector.config import load_state_settings

    source = state_path or load_state_settings(config_path).path
    report = backup_state(source, dest, force=force)
    click.echo(
        f"backed up {source} to {report.destination} ({report.size} bytes, schema version "
        f"{report.schema_version}, mode 0600)"
    )


@state_group.command("rebuild")
@config_option
def state_rebuild(config_path: Path) -> None:
    """Recover a lost, emptied or corrupt-and-replaced state from both sides' records.

    Links complaints again from the LAPOR! ids the agency holds (and from LAPOR!'s
    external_ref for complaints the agency filed), replies from their LAPOR! follow-up ids, and
    the agency's follow-ups from their text on LAPOR!, so the next sync files and posts nothing
    twice. Run it on a new, empty state.path (move a corrupt file aside first).

    \b
    Example:
      mv /var/lib/lapor-connector/state.sqlite /var/lib/lapor-connector/state.sqlite.broken
      lapor-connector state rebuild --config /etc/lapor-connector/config.yaml
      lapor-connector sync --config /etc/lapor-connector/config.yaml
    """
    from connector.installation import identity_of
    from connector.rebuild import rebuild_state, rotate_anchor
    from connector.sync import open_sync

    settings = load_configured(config_path)
    with open_sync(settings, SystemClock(), actor="state rebuild", guard=False) as sync:
        kept = rotate_anchor(sync)
        report = rebuild_state(sync)
        with sync.store.transaction():
            sync.store.set_identity(identity_of(settings))
    click.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vars(report).items()))
    if kept:
        click.echo(f"the lost log's anchor is kept as {kept}; a new one starts")
    click.echo("done: run `lapor-connector sync` next (it compares every linked complaint once)")


@state_group.command("prune")
@config_option
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
def state_prune(config_path: Path, dry_run: bool) -> None:
    """Remove the contents of complaints closed longer than privacy.retention_days.

    For each complaint closed on both sides (LAPOR! and the agency) whose link has not changed
    for the retention, the state loses its title, the texts and file names of its settled
    writes, and its quarantined records; ids, links and the audit log stay (`log verify` still
    passes). A complaint with a write still open is left for a later prune. The daemon prunes
    once a day unless privacy.prune_daily is false. See docs/privacy.md.

    \b
    Example:
      lapor-connector state prune --dry-run --config /etc/lapor-connector/config.yaml
      lapor-connector state prune --config /etc/lapor-connector/config.yaml
    """
    from connector.retention import prune_configured
    from connector.writer import writer_lock

    settings = load_configured(config_path)
    with nullcontext() if dry_run else writer_lock(settings.state.path, "state prune"):
        report = prune_configured(settings, SystemClock(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    days = settings.privacy.retention_days
    if not report.total:
        click.echo(
            f"nothing to prune: no complaint closed more than {days} days ago holds contents"
        )
        return
    click.echo(
        f"{verb} the contents of {report.complaints} complaint(s) closed more than {days} days ago: "
        f"{report.titles} title(s), {report.payloads} write payload(s), "
        f"{report.quarantined} quarantined record(s); ids, links and the audit log are kept"
    )
