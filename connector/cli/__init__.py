"""The ``lapor-connector`` command line, one module per command group.

``root`` holds the group itself and the commands that stand alone (pull, run, config check,
masters, probe, simulate, demo, init); ``sync`` the sync, resync, status and quarantine
commands; ``log`` the audit log; ``state`` the state file; ``sla`` and ``reconcile`` theirs.
``support`` is what every command shares (errors to exit codes, ``--config``), ``tables`` how
tables and rows are printed (for people on a terminal, plain when piped, json and csv for
tools). Exit codes: see ``connector.cli.support``.
"""

from __future__ import annotations

from connector.cli.log import log_group
from connector.cli.reconcile import reconcile_command
from connector.cli.root import cli
from connector.cli.sla import sla_group
from connector.cli.state import state_group
from connector.cli.sync import COMMANDS

cli.add_command(log_group)
for _command in COMMANDS:
    cli.add_command(_command)
cli.add_command(state_group)
cli.add_command(sla_group)
cli.add_command(reconcile_command)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="lapor-connector")


if __name__ == "__main__":  # pragma: no cover
    main()
