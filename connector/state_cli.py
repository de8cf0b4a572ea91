"""``lapor-connector state``: look after the state file itself."""

from __future__ import annotations

from pathlib import Path

import click

from connector.cli_support import ConnectorGroup, config_option, load_configured
from connector.clock import SystemClock


@click.group("state", cls=ConnectorGroup)
def state_group() -> None:
    """The state file: recover a lost one."""


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
