"""Tables for people: drawn on a terminal, plain aligned text when piped (nothing cut)."""

from __future__ import annotations

import io

from rich.table import Table

from connector.tables import show

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
