"""Long work shows it moves: a bar on a terminal, a progress log line every 10 s off one."""

from __future__ import annotations

import io
from collections.abc import Callable

import structlog
from structlog.testing import capture_logs

from connector.clock import FakeClock
from connector.flows.inbound import run_inbound
from connector.progress import Progress
from connector.sync import Sync
from tests.test_sync import adapter, agency_control, agency_system, make_sync, mappings_dir

__all__ = ["adapter", "agency_control", "agency_system", "make_sync", "mappings_dir"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_line_every_ten_seconds_and_one_at_the_end() -> None:
    clock = FakeClock()
    structlog.reset_defaults()
    with (
        capture_logs() as logs,
        Progress("complaints synced", clock, stream=io.StringIO()) as progress,
    ):
        for done in range(1, 31):
            progress.update(done, 30)
            clock.advance(1)
    lines = [e for e in logs if e["event"] == "progress"]
    assert [e["done"] for e in lines] == [1, 11, 21, 30]
    assert lines[-1]["total"] == 30
    assert lines[-1]["per_minute"] == 60.0


def test_on_a_terminal_a_bar() -> None:
    out = Terminal()
    with Progress("complaints synced", FakeClock(), stream=out) as progress:
        progress.update(5, 10)
    assert "complaints synced" in out.getvalue()
    assert "5/10" in out.getvalue()


def test_the_inbound_flow_reports_its_progress(
    make_sync: Callable[..., Sync], clock: FakeClock
) -> None:
    sync = make_sync()
    seen: list[tuple[int, int | None]] = []

    class Recorder(Progress):
        def update(self, done: int, total: int | None = None) -> None:
            super().update(done, total)
            seen.append((self.done, self.total))

    sync.progress = Recorder("complaints synced", clock, stream=io.StringIO())
    report = run_inbound(sync)
    assert seen
    done, total = seen[-1]
    assert (
        done
        == report.created + report.updated + report.unchanged + report.skipped + report.quarantined
    )
    assert total is not None
    assert total >= done  # the listing's own estimate, never below what was done
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
