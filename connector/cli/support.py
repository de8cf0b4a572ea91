"""What every command module shares: error handling with exit codes, ``--config``, settings.

Exit codes: 0 done; 1 unexpected failure; 2 wrong usage; 3 invalid configuration or mappings;
4 fatal (credentials refused, or the service broke the contract); 5 a service is unavailable (try
later); 6 a record or the remote state needs attention (quarantine, re-disposition, conflict);
7 a write's outcome is unknown (it is looked up before anything is sent again); 8 another
connector process is writing with the same state file (one writer per state).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from connector import errors
from connector.config import Settings, load_settings
from connector.logs import configure
from connector.writer import WriterBusy

EXIT_CODES: tuple[tuple[type[errors.ConnectorError], int], ...] = (
    (WriterBusy, 8),
    (errors.ConfigError, 3),
    (errors.MappingError, 3),
    (errors.FatalError, 4),
    (errors.RetriableError, 5),
    (errors.RecordError, 6),
    (errors.ReconcileError, 6),
    (errors.AmbiguousOutcome, 7),
)

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(error: errors.ConnectorError) -> int:
    """The documented exit code for an error."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


class ConnectorGroup(click.Group):
    """A command group that prints connector errors as one clear message and exits with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.ConnectorError as error:
            if (ctx.obj or {}).get("traceback"):
                raise
            click.secho(f"error: {error}", err=True, fg="red")
            ctx.exit(exit_code_for(error))


def config_option(command: F) -> F:
    """Add ``--config PATH`` (default ``config.yaml``)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("config.yaml"),
        show_default=True,
        help="Configuration file.",
    )(command)


def load_configured(config_path: Path) -> Settings:
    """Load and validate the configuration, then set up logging as it says."""
    settings = load_settings(config_path)
    configure(settings.logging.level, settings.logging.format)
    return settings
