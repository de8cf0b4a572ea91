"""Tables for the terminal (rich): what operators read. No reporter data ever appears here."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from connector.lapor.wire import WIB

SECRET_TITLE = "(rahasia: judul disembunyikan)"  # noqa: S105 (a label, not a password)


#: Wide enough that no cell of a piped table is ever wrapped or cut.
_UNLIMITED = 1_000_000


def show(*tables: Table, file: IO[str] | None = None, markup: bool = True) -> None:
    """Print tables for people: drawn on a terminal; piped or written to a file, as plain
    aligned text (a title line, the headings, one line per row: no borders, nothing wrapped
    or cut, no colour), so ``grep``, ``sort`` and ``column`` see whole values."""
    out = file or sys.stdout
    if out.isatty():
        console = Console(file=out, markup=markup)
        for table in tables:
            console.print(table)
        return
    plain = Console(file=out, width=_UNLIMITED, no_color=True, highlight=False,
                    markup=markup, force_terminal=False, emoji=False)  # fmt: skip
    for table in tables:
        table.box = None
        table.show_edge = False
        table.pad_edge = False
        for column in table.columns:
            column.no_wrap = True
            column.overflow = "ignore"
            column.max_width = None
        with plain.capture() as captured:
            plain.print(table)
        for line in captured.get().splitlines():
            out.write(line.rstrip() + "\n")
        out.flush()


def emit(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:
    """Rows for tools: ``json`` one array of objects, ``csv`` a header and one line per row."""
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    writer = csv.DictWriter(
        sys.stdout, fieldnames=columns, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)


def _wib(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(WIB).strftime("%d-%m-%Y %H:%M")


def complaints_table(rows: Iterable[Mapping[str, Any]], *, title: str) -> Table:
    """Complaints pulled from LAPOR!; a secret (rahasia) complaint's title is not shown."""
    table = Table(title=title, title_justify="left")
    table.add_column("Tracking ID", style="bold")
    table.add_column("LAPOR! id", justify="right")
    table.add_column("Status")
    table.add_column("Judul (title)", overflow="fold", max_width=48)
    table.add_column("Flags")
    table.add_column("Disposisi", overflow="fold", max_width=30)
    table.add_column("Updated (WIB)")
    for row in rows:
        flags = [
            name
            for name, on in (("rahasia", row["is_secret"]), ("anonim", row["is_anonymous"]))
            if on
        ]
        if row["overdue"]:
            flags.append("overdue")
        table.add_row(
            row["tracking_id"],
            str(row["lapor_id"]),
            row["status_name"],
            SECRET_TITLE if row["is_secret"] else row["title"],
            ", ".join(flags),
            row["disposition_name"] or "",
            _wib(row["updated_at"]),
        )
    return table


def records_table(title: str, columns: list[str], rows: Iterable[Iterable[object]]) -> Table:
    """A plain table of master data."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table
