"""The root of the command line and the commands that stand alone: pull, run, config check,
masters, probe, simulate, demo, init (the groups are in their own modules)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from connector import __version__, errors
from connector.cli.support import ConnectorGroup, config_option, load_configured
from connector.cli.tables import emit, show
from connector.clock import SystemClock
from connector.config import load_settings
from connector.mappings import mappings_problems
from connector.state import state_path_problems


@click.group(cls=ConnectorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lapor-connector")
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Keep an agency's complaint system and SP4N-LAPOR! in step.

    \b
    Example:
      lapor-connector demo                    # the whole thing against the bundled simulators
      lapor-connector pull --config config.yaml
    """
    ctx.obj = {"traceback": traceback}


@cli.command()
@config_option
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to show (0: none).")
def pull(config_path: Path, limit: int) -> None:
    """Pull every complaint disposed to the agency into the local state, and show them.

    Only complaints updated since the last pull are read; invalid records are quarantined and
    the rest still sync.

    \b
    Example:
      LAPOR_API_KEY=... LAPOR_TOKEN='{...}' lapor-connector pull --config config.yaml
    """
    from connector.cli.tables import complaints_table
    from connector.lapor.client import LaporClient
    from connector.pull import pull_inbox
    from connector.state import StateStore
    from connector.writer import writer_lock

    settings = load_configured(config_path)
    clock = SystemClock()
    with (
        writer_lock(settings.state.path, "pull"),
        StateStore(settings.state.path, clock) as store,
        LaporClient(settings.lapor, clock) as client,
    ):
        report = pull_inbox(client, store)
        console = Console()
        if limit:
            rows = store.complaints()[:limit]
            show(
                complaints_table(
                    rows, title=f"Complaints in {settings.state.path} ({len(rows)} shown)"
                )
            )
        console.print(
            f"pulled: {report.new} new, {report.changed} changed, {report.unchanged} unchanged, "
            f"{len(report.quarantined)} quarantined, {report.requests} requests"
        )
        for bad in report.quarantined:
            console.print(f"  quarantined: {bad.describe()}", style="yellow", markup=False)


@cli.command()
@config_option
def run(config_path: Path) -> None:
    """Run the daemon: every sync job on its interval, until SIGTERM or Ctrl-C.

    Only one daemon runs per state file. A refused API key or token stops it (exit code 4).

    \b
    Example:
      lapor-connector run --config /etc/lapor-connector/config.yaml
    """
    from connector.daemon import Daemon

    Daemon(load_configured(config_path)).serve()


@cli.group(cls=ConnectorGroup)
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@config_option
def config_check(config_path: Path) -> None:
    """Validate the configuration and say what it connects to (secrets are never shown).

    \b
    Example:
      lapor-connector config check --config /etc/lapor-connector/config.yaml
    """
    settings = load_settings(config_path)
    problems = [
        *state_path_problems(settings.state.path),
        *mappings_problems(settings.mappings.path),
    ]
    if problems:
        raise errors.ConfigError(problems, str(config_path))
    click.echo(f"{config_path}: valid")
    click.echo(
        f"  LAPOR!: {settings.lapor.base_url} as institution {settings.lapor.institution_id}"
    )
    click.echo(f"  pace: {settings.lapor.requests_per_minute:g} requests/minute")
    if settings.agency is not None:
        click.echo(f"  agency ({settings.agency.kind}): {settings.agency.base_url}")
    else:
        click.echo("  agency: none configured (the daemon only pulls the LAPOR! inbox)")
    click.echo(f"  state: {settings.state.path}")
    click.echo(f"  mappings: {settings.mappings.path}")


MASTERS = ("categories", "institutions", "templates", "statuses", "classifications", "topics")


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    show_default=True, help="table for people, json or csv for tools.",
)  # fmt: skip
@config_option
@click.argument("kind", type=click.Choice(MASTERS))
def masters(config_path: Path, kind: str, fmt: str) -> None:
    """Show LAPOR! master data (what the mappings refer to).

    \b
    Example:
      lapor-connector masters categories
      lapor-connector masters institutions --format csv > institutions.csv
    """
    from connector.cli.tables import records_table
    from connector.lapor.client import LaporClient

    settings = load_configured(config_path)
    with LaporClient(settings.lapor, SystemClock()) as client:
        records = getattr(client, kind)()
    if not records:
        click.echo(f"no {kind}")
        return
    columns = list(type(records[0]).model_fields)
    rows = [[getattr(getattr(r, c), "value", getattr(r, c)) for c in columns] for r in records]
    if fmt != "table":
        emit([dict(zip(columns, row, strict=True)) for row in rows], columns, fmt)
        return
    show(records_table(f"LAPOR! {kind}", columns, rows))


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, not tables.")
@click.option(
    "--write",
    is_flag=True,
    help="Also upload a file, create one test complaint and add one follow-up (sandbox only).",
)
@click.option(
    "--i-know-this-is-production",
    "production_ok",
    is_flag=True,
    help="Allow --write against a base URL that is not the sandbox or a local simulator.",
)
def probe(config_path: Path, as_json: bool, write: bool, production_ok: bool) -> None:
    """Compare what LAPOR! really sends with the connector's reading of the contract.

    Reads one page of every endpoint and says, per field path, "as expected", "understood,
    but differs" or "not understood" (exit code 6). Only paths and kinds are shown, never a
    value.

    \b
    Example:
      lapor-connector probe --config config.yaml
      lapor-connector probe --json > probe.json
      lapor-connector probe --write        # against the sandbox base URL
    """
    import json

    from connector import errors
    from connector.lapor.client import LaporClient
    from connector.mappings import load_mappings
    from connector.probe import probe as run_probe
    from connector.probe import probe_tables, write_allowed

    settings = load_configured(config_path)
    if write and not write_allowed(settings.lapor.base_url, production_ok=production_ok):
        raise click.UsageError(
            f"--write creates a real complaint; {settings.lapor.base_url} is not the sandbox "
            "base URL or a local simulator. Point lapor.base_url at the sandbox, or add "
            "--i-know-this-is-production."
        )
    location = None
    if write:
        try:
            location = load_mappings(settings.mappings.path).location_for_unit(None)
        except errors.ConnectorError:
            location = None  # the inbox's first complaint may still name one
    clock = SystemClock()
    with LaporClient(settings.lapor, clock) as client:
        report = run_probe(
            client, settings.lapor, now=clock.now(), write=write, location_id=location
        )
    summary = report.summary()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        console = Console()
        show(*probe_tables(report), markup=False)
        console.print(
            f"{summary['as_expected']} as expected, {summary['differs']} understood but "
            f"differ, {summary['not_understood']} not understood, {summary['ignored']} "
            "unknown fields ignored",
            markup=False,
        )
    if report.needs_attention:
        raise errors.ReconcileError(
            f"probe: {summary['not_understood']} field(s) or endpoint(s) not understood; "
            "report their paths and observed kinds (never values) to the maintainers"
        )


@cli.group(cls=ConnectorGroup)
def simulate() -> None:
    """Run a bundled simulator (for tests and demos; never part of LAPOR!)."""


@simulate.command("lapor")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0: any free port).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated data.")
@click.option(
    "--complaints", type=int, default=40, show_default=True, help="Complaints to generate."
)
@click.option(
    "--api-key",
    envvar="LAPOR_API_KEY",
    default="sim-api-key",
    show_default=True,
    help="API key to accept.",
)
@click.option(
    "--token",
    envvar="LAPOR_TOKEN",
    default="{8F2C6A51-3D4B-4E0A-9C1F-7A2B5D6E8F90}",
    show_default=True,
    help="Braced GUID token to accept.",
)
@click.option(
    "--institution-id",
    type=int,
    default=145,
    show_default=True,
    help="The agency's institution id.",
)
@click.option(
    "--rate-limit",
    type=int,
    default=60,
    show_default=True,
    help="Requests a minute per token (0: none).",
)
@click.option("--no-control", is_flag=True, help="Switch off the /_sim/ control plane.")
@click.option(
    "--dialect",
    # the names of connector.simulators.lapor.dialects.DIALECTS (tests/test_simulator_dialects.py checks)
    type=click.Choice(["contract", "iso", "wib", "php", "mysql", "sparse", "legacy", "counts"]),
    default="contract",
    show_default=True,
    help="How the simulator encodes what the contract leaves open (timestamps, numbers, booleans, blanks).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Network latency of every API request, in milliseconds (half in, half out).",
)
def simulate_lapor(**options: Any) -> None:
    """Serve a LAPOR! v3 simulator under /lapor/3.0.0 until interrupted.

    \b
    Example:
      lapor-connector simulate lapor --port 8081 --complaints 500
      lapor-connector simulate lapor --complaints 100000 --latency-ms 40 --rate-limit 0
    """
    from connector.simulators.lapor import serve_forever

    with _listening(options["host"], options["port"]):
        serve_forever(
            host=options["host"],
            port=options["port"],
            seed=options["seed"],
            complaints=options["complaints"],
            api_key=options["api_key"],
            token=options["token"],
            institution_id=options["institution_id"],
            requests_per_minute=options["rate_limit"],
            control=not options["no_control"],
            dialect=options["dialect"],
            latency_ms=options["latency_ms"],
        )


@simulate.command("agency")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8090, show_default=True, help="Port (0: any free port).")
@click.option(
    "--token",
    envvar="AGENCY_API_TOKEN",
    default="demo-agency-token",
    show_default=True,
    help="Bearer token to accept (or AGENCY_API_TOKEN).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("agency-demo.sqlite"),
    show_default=True,
    help="The system's own SQLite file.",
)
@click.option(
    "--complaints",
    type=int,
    default=5,
    show_default=True,
    help="Internal complaints to seed into a new file.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated data.")
@click.option("--no-control", is_flag=True, help="Switch off the /_sim/ control plane.")
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Network latency of every API request, in milliseconds (half in, half out).",
)
def simulate_agency(
    db_path: Path,
    host: str,
    port: int,
    token: str,
    complaints: int,
    seed: int,
    no_control: bool,
    latency_ms: float,
) -> None:
    """Serve the demo agency system (the agency REST contract, under /api/v1) until interrupted.

    \b
    Example:
      AGENCY_API_TOKEN=secret lapor-connector simulate agency --port 8090 --db agency.sqlite
      lapor-connector simulate agency --latency-ms 20
    """
    from connector.simulators.agency import serve_forever as serve_agency

    with _listening(host, port):
        serve_agency(
            db_path=db_path,
            host=host,
            port=port,
            token=token,
            complaints=complaints,
            seed=seed,
            control=not no_control,
            latency_ms=latency_ms,
        )


@contextmanager
def _listening(host: str, port: int) -> Iterator[None]:
    """Turn a port that cannot be listened on into one line naming it and the fix (exit 3)."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        why = {errno.EADDRINUSE: "is already in use", errno.EACCES: "needs privileges this user lacks",
               errno.EADDRNOTAVAIL: "is not an address of this machine"}[error.errno]  # fmt: skip
        raise errors.ConfigError(
            [
                f"--host/--port: {host}:{port} {why}; stop what listens there or choose another "
                "(--port 0 takes any free port)"
            ],
            "simulate",
        ) from None


@cli.command()
@click.option(
    "--complaints",
    type=int,
    default=40,
    show_default=True,
    help="Complaints the simulator generates.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated data.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps its SQLite state (wiped at start).",
)
def demo(complaints: int, seed: int, state_dir: Path) -> None:
    """Run the connector against the bundled LAPOR! simulator, with SQLite state.

    \b
    Example:
      lapor-connector demo --complaints 200
    """
    from connector.simulators.demo import run_demo

    run_demo(complaints=complaints, seed=seed, state_dir=state_dir, console=Console())


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def init(directory: Path, force: bool) -> None:
    """Write a deployment directory: an example config.yaml (its paths under DIRECTORY), its
    JSON Schema, the default mappings and the systemd units, from the installed package.

    \b
    Example:
      lapor-connector init /etc/lapor-connector
      lapor-connector config check --config /etc/lapor-connector/config.yaml
    """
    from connector.defaults import init_deployment

    try:
        written = init_deployment(directory, force=force)
    except FileExistsError as error:
        raise click.UsageError(
            f"{error.args[0]} is already there; nothing was written (--force overwrites)"
        ) from None
    click.echo(f"wrote {len(written)} files under {directory}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(
        "next: set the credentials config.yaml refers to (docs/configuration.md), adapt the "
        f"mappings, then: lapor-connector config check --config {directory / 'config.yaml'}"
    )
