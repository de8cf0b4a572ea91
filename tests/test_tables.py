"""Tables for people: drawn on a terminal, plain aligned text when piped (nothing cut)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.table import Table

from connector.cli.tables import show

LONG = "mapping gap: statuses.yaml inbound has no rule for LAPOR! status code 'verifikasi_ulang'; add one"


def table() -> Table:
    made = Table(title="Quarantined records (1)", title_justify="left")
    for column in ("id", "flow", "problems", "last seen (UTC)"):
        made.add_column(column)
    made.add_row("7", "inbound", f"[yellow]{LONG}[/]", "2026-12-01T23:45:00")
    return made


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_tables_are_plain_aligned_lines_with_nothing_cut() -> None:
    out = io.StringIO()
    show(table(), file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Quarantined records (1)"
    assert lines[1].split() == ["id", "flow", "problems", "last", "seen", "(UTC)"]
    assert lines[2].startswith("7  ")
    assert LONG in lines[2]  # whole, on one line, without the markup
    assert "2026-12-01T23:45:00" in lines[2]
    assert not any(ch in out.getvalue() for ch in "│┃━─…")
    assert lines[1].index("problems") == lines[2].index("mapping gap")  # aligned


def test_on_a_terminal_they_are_drawn() -> None:
    out = Terminal()
    show(table(), file=out)
    assert any(ch in out.getvalue() for ch in "│┃━─")


def test_every_listing_command_offers_table_json_and_csv() -> None:
    """Every command that lists things takes --format table|json|csv (status, quarantine list,
    log, log timeline, sla, sla summary, reconcile, masters)."""
    import click

    from connector.cli import cli

    def command(path: str) -> click.Command:
        found: click.Command = cli
        for name in path.split():
            assert isinstance(found, click.Group)
            found = found.commands[name]
        return found

    for path in ("status", "quarantine list", "sla", "reconcile", "masters", "log timeline"):
        [option] = [p for p in command(path).params if "--format" in getattr(p, "opts", [])]
        assert isinstance(option.type, click.Choice)
        assert {"table", "json", "csv"} <= set(option.type.choices), path


def test_status_and_quarantine_for_tools(tmp_path: Path) -> None:
    import csv as csv_module
    import json

    from click.testing import CliRunner

    from connector import models as m
    from connector.cli import cli
    from connector.clock import FakeClock
    from connector.errors import FieldProblem
    from connector.state import StateStore
    from tests.test_cli import ENV, write_config

    config = write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")
    with StateStore(tmp_path / "state.sqlite", FakeClock()) as store, store.transaction():
        store.quarantine(m.InvalidRecord(source="inbound", record_id="5010601",
                                         problems=(FieldProblem("updated_at", "no UTC offset"),), raw={}))  # fmt: skip
    runner = CliRunner()
    listed = runner.invoke(
        cli, ["quarantine", "list", "--config", str(config), "--format", "json"], env=ENV
    )
    assert listed.exit_code == 0, listed.output
    [record] = json.loads(listed.output)
    assert (record["kind"], record["record"], record["flow"]) == ("record", "5010601", "inbound")
    assert "updated_at" in record["problems"]
    status = runner.invoke(cli, ["status", "--config", str(config), "--format", "csv"], env=ENV)
    assert status.exit_code == 0, status.output
    rows = list(csv_module.DictReader(status.output.splitlines()))
    assert {r["flow"] for r in rows} >= {"inbound"}
    assert {"last_run", "watermark", "quarantined"} <= set(rows[0])


def test_status_counts_the_writes_of_every_flow(tmp_path: Path) -> None:
    """A dead SLA push is a dead write like any other: status lists its flow and is unhealthy."""
    import json

    from click.testing import CliRunner

    from connector.cli import cli
    from connector.clock import FakeClock
    from connector.state import StateStore
    from tests.test_cli import ENV, write_config

    config = write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")
    with StateStore(tmp_path / "state.sqlite", FakeClock()) as store:
        from connector.outbox import Outbox

        outbox = Outbox(store)
        with store.transaction():
            outbox.enqueue(key="agency.sla:A-1:verify:overdue:2026-12-01", flow="sla", target="agency",
                           operation="agency_update_complaint", subject="A-1",
                           payload={"agency_id": "A-1", "patch": {}}, lookup={})  # fmt: skip
            store.db.execute("UPDATE outbox SET state = 'dead'")
    result = CliRunner().invoke(cli, ["status", "--config", str(config), "--json"], env=ENV)
    report = json.loads(result.output)
    assert report["flows"]["sla"]["dead"] == 1
    assert "sla: 1 dead write(s)" in report["problems"]
    assert not any(p.startswith("sla: has never run") for p in report["problems"])
