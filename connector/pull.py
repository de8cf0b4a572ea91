"""Pull the LAPOR! inbox into the state store: every complaint disposed to us, new or changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from connector.lapor.client import LaporClient
from connector.logs import get_logger
from connector.models import InvalidRecord
from connector.state import StateStore

log = get_logger("pull")

FLOW = "lapor.inbox"
#: The first pull starts here: everything LAPOR! still lists.
BEGINNING = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: Re-read this much before the watermark, so clock skew between LAPOR!'s servers cannot hide a change.
DEFAULT_OVERLAP = timedelta(minutes=5)


@dataclass
class PullReport:
    """What one pull did."""

    since: datetime
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    quarantined: list[InvalidRecord] = field(default_factory=list)
    pages: int = 0
    requests: int = 0
    watermark: datetime | None = None

    @property
    def seen(self) -> int:
        """Complaints read from LAPOR!, valid ones only."""
        return self.new + self.changed + self.unchanged


def pull_inbox(
    client: LaporClient, store: StateStore, *, overlap: timedelta = DEFAULT_OVERLAP
) -> PullReport:
    """List complaints updated since the last pull and record them, one transaction a page.

    The cursor advances with each committed page and, at the end, to the service's own clock,
    so an interrupted pull resumes where it stopped and a finished one re-reads nothing but the
    overlap window. Invalid records are quarantined; the rest of the page is still saved.
    """
    watermark = store.watermark(FLOW)
    since = BEGINNING if watermark is None else watermark - overlap
    report = PullReport(since=since)
    requests_before = client.transport.requests_sent
    listing = client.inbox(since)
    for page in listing.pages():
        with store.transaction():
            for complaint in page.records:
                outcome = store.save_complaint(complaint)
                setattr(report, outcome, getattr(report, outcome) + 1)
                store.release(FLOW, str(complaint.lapor_id))
            for bad in page.invalid:
                store.quarantine(bad)
                report.quarantined.append(bad)
                log.warning(
                    "record_quarantined",
                    flow=FLOW,
                    record_id=bad.record_id,
                    problems=[str(p) for p in bad.problems],
                )
            if page.records:
                store.set_watermark(FLOW, max(c.updated_at for c in page.records))
        report.pages += 1
    if listing.server_time is not None:
        with store.transaction():
            store.set_watermark(FLOW, listing.server_time)
    report.watermark = store.watermark(FLOW)
    report.requests = client.transport.requests_sent - requests_before
    log.info(
        "inbox_pulled",
        new=report.new,
        changed=report.changed,
        unchanged=report.unchanged,
        quarantined=len(report.quarantined),
        pages=report.pages,
        requests=report.requests,
    )
    return report
