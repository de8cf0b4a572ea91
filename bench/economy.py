"""P2: LAPOR! requests the connector makes per scenario, against the documented minimum.

For the ``contract`` dialect and the ``counts`` dialect (list items carry ``followups_count``), one
LAPOR! simulator and one agency system each, in their own processes. The connector runs in this
process, one inbound run at a time as the daemon makes them (``open_sync`` + the inbound flow),
unpaced, with its default page size. The LAPOR! simulator counts the requests by route; its
counters are reset before every run. Scenarios:

(a) the initial sync; minimum: 1 categories request, ⌈listed/1000⌉ inbox pages, one C2 per
    complaint created in the agency, one C3 per created complaint (counts dialect: per created
    complaint whose ``followups_count`` > 0);
(b) an idle run at once, and one after the simulated clock moved 10 minutes; minimum: 1 inbox page;
(c) 10 changes on linked complaints (5 citizen replies, 3 admin notes, 2 admin closes); minimum:
    1 inbox page + one C3 per changed complaint (counts dialect: per complaint whose follow-ups
    changed; a close leaves ``followups_count`` as it was);
(d) many linked complaints closed at once with one shared ``updated_at`` (``/_sim/admin/touch``),
    then 3 runs with the clock moved a minute between them (inside the 5-minute overlap, so each
    run lists them all again); minimum: ⌈listed/1000⌉ inbox pages + one C3 per complaint the
    first run sees changed (none in the counts dialect: a closure adds no follow-up), the pages
    alone in the runs after it.

The minimums are those of docs/sync.md, computed from the simulator's own records
(``/_sim/complaints``): what changed since the previous run, and what an inbox listing from the
previous run's cursor less 5 minutes returns.

    python -m bench.economy [--complaints 2000] [--touch 1200] [--dialects contract counts] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.harness import (
    API_KEY,
    INSTITUTION,
    MASTER_ROUTES,
    TOKEN,
    Results,
    add_common_arguments,
    change,
    connector_mapping,
    inbound_cycle,
    lapor_requests,
    pages,
    running,
    settings,
    start_agency,
    start_lapor,
)
from connector.simulators.lapor import SimControl

MAX_RATIO = 1.05
#: The inbound flow's overlap: each run lists from the previous run's cursor less this.
OVERLAP = timedelta(minutes=5)
TERMINAL = {"done", "archived", "rejected"}


def census(base_url: str) -> list[dict[str, Any]]:
    """Every complaint the inbox lists from the beginning, read by the benchmark itself (pages
    of 1,000), before the counters are reset: what a correct connector must create."""
    session = requests.Session()
    session.trust_env = False
    session.headers.update({"Authorization": f"Bearer {API_KEY}", "token": TOKEN})
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = session.get(f"{base_url}/complaints/inbox", params={"updated_since": "2000-01-01T00:00:00+00:00", "page": str(page),
                           "page_size": "1000"}, timeout=120).json()["results"]  # fmt: skip
        items += body["data"]
        if not body["next_page_url"]:
            return items
        page += 1


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Minimum:
    """The documented minimum of one scenario, by route."""

    routes: dict[str, int]
    why: str

    @property
    def total(self) -> int:
        return sum(self.routes.values())


@dataclass
class Scenarios:
    """One dialect's scenarios against one pair of servers; the connector runs in this process.

    Between runs the benchmark reads the simulator's records (``/_sim/complaints``), so each
    minimum comes from what really changed and what the next listing really returns."""

    dialect: str
    control: SimControl
    config: Any
    results: Results
    linked: set[int] = field(default_factory=set)  #: the complaints the initial sync created
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    previous: dict[int, dict[str, Any]] = field(default_factory=dict)
    cursor: datetime | None = None  #: the simulator's clock at the end of the last run
    replied: set[int] = field(default_factory=set)  #: given a reply or note since the last run

    def refresh(self) -> set[int]:
        """Read the simulator's records again; return the linked complaints that changed."""
        self.previous, self.records = self.records, {c["id"]: c for c in self.control.complaints()}
        return {
            i
            for i in self.linked
            if self.previous.get(i, {}).get("updated_at") != self.records[i]["updated_at"]
        }

    def listed(self) -> int:
        """How many complaints an inbox listing from the last cursor less the overlap returns."""
        assert self.cursor is not None
        since = self.cursor - OVERLAP
        return sum(
            1
            for c in self.records.values()
            if (INSTITUTION in c["holders"] or c["creator_id"] == INSTITUTION)
            and _moment(c["updated_at"]) >= since
        )

    def replies_needed(self, changed: set[int]) -> int:
        """C3 a correct connector reads: in the counts dialect one per complaint whose follow-ups
        changed; otherwise one per changed complaint still disposed to us (any change may be a
        reply, also on a closed complaint; LAPOR! refuses the read to a former holder)."""
        if self.dialect == "counts":
            return len(changed & self.replied)
        return sum(1 for i in changed if self.records[i]["disposition_id"] == INSTITUTION)

    def open_linked(self) -> list[int]:
        return sorted(
            i
            for i in self.linked
            if self.records[i]["status"] not in TERMINAL
            and self.records[i]["disposition_id"] == INSTITUTION
        )

    def details_needed(self, changed: set[int], before: dict[int, dict[str, Any]]) -> int:
        """C2 a correct connector reads for changes nothing else explains: a complaint still
        disposed to us whose listed fields did not change and that got no new follow-up (the
        change is then only in its detail: docs/sync.md, "Request economy")."""
        listed = ("status", "disposition_id", "is_secret", "is_anonymous", "title", "category_id",
                  "classification_id")  # fmt: skip
        return sum(
            1
            for i in changed
            if self.records[i]["disposition_id"] == INSTITUTION
            and all(self.records[i].get(k) == before[i].get(k) for k in listed)
            and i not in self.replied
        )

    def run(self, scenario: str, minimum: Minimum | None = None) -> dict[str, Any]:
        """One inbound run with the counters reset first, judged against ``minimum`` (by default:
        the inbox pages the listing needs, the C3 the changes need, and the C2 of changes
        nothing else explains)."""
        changed = self.refresh()
        if minimum is None:
            listed, replies = self.listed(), self.replies_needed(changed)
            details = self.details_needed(changed, self.previous)
            minimum = Minimum({"inbox": pages(listed), "followups": replies, "complaint": details},
                              f"⌈{listed} listed/1000⌉ pages + {replies} C3 for {len(changed)} changed"
                              + (f" + {details} C2 for changes nothing else explains" if details else ""))  # fmt: skip
        self.control.reset_stats()
        report = inbound_cycle(self.config)
        stats = self.control.stats()
        self.cursor = _moment(stats["now"])
        self.replied.clear()
        print(f"  {scenario}: {report['created']} created, {report['updated']} updated, {report['replies']} replies "
              f"in the agency, {report['wall']:.2f} s", flush=True)  # fmt: skip
        counted = lapor_requests(stats)
        master = {r: n for r, n in counted.items() if r in MASTER_ROUTES}
        other = {r: n for r, n in counted.items() if r not in MASTER_ROUTES}
        print(f"    requests: {', '.join(f'{r} {n}' for r, n in other.items()) or 'none'}; "
              f"master data: {', '.join(f'{r} {n}' for r, n in master.items()) or 'none'}", flush=True)  # fmt: skip
        print(f"    minimum:  {', '.join(f'{r} {n}' for r, n in minimum.routes.items() if n)} ({minimum.why})", flush=True)  # fmt: skip
        total = sum(counted.values())
        ratio = total / minimum.total
        self.results.add("P2", f"{self.dialect}: {scenario}", f"{ratio:.3f}x", f"<= {MAX_RATIO}", ratio <= MAX_RATIO,
                         f"{total} requests, minimum {minimum.total}")  # fmt: skip
        return report

    def initial_sync(self, items: list[dict[str, Any]]) -> None:
        """(a): everything the inbox lists, from the beginning."""
        created = [i for i in items if i["disposition_id"] == INSTITUTION and not i["external_ref"]]  # fmt: skip
        self.linked = {int(i["id"]) for i in created}
        with_followups = sum(1 for i in created if int(i.get("followups_count") or 0) > 0)
        replies = with_followups if self.dialect == "counts" else len(created)
        minimum = Minimum({"categories": 1, "inbox": pages(len(items)), "complaint": len(created), "followups": replies},
                          f"1 categories, ⌈{len(items)} listed/1000⌉ pages, C2 per created, C3 per created"
                          + (" with followups_count > 0" if self.dialect == "counts" else ""))  # fmt: skip
        report = self.run(f"(a) initial sync, {len(created):,} to create", minimum)
        if report["created"] != len(created):
            print(f"    note: the connector created {report['created']}, the listing holds {len(created)} to create")  # fmt: skip

    def idle(self) -> None:
        """(b): nothing changed; at once, and after the clock moved 10 minutes."""
        self.run("(b) idle run at once")
        self.control.advance_seconds(600)
        self.run("(b) idle run after 10 minutes")

    def ten_changes(self) -> None:
        """(c): 5 citizen replies, 3 admin notes, 2 admin closes on linked complaints still open."""
        candidates = self.open_linked()
        chosen = candidates[:: max(1, len(candidates) // 10)][:10]
        for n, complaint_id in enumerate(chosen):
            action = "reply" if n < 5 else "note" if n < 8 else "close"
            change(self.control, action, complaint_id, f"Perubahan bench {n}")
        self.replied |= set(chosen[:8])
        self.run("(c) 10 changes (5 replies, 3 notes, 2 closes)")

    def closed_at_once(self, count: int) -> None:
        """(d): ``count`` linked complaints closed at one moment, then 3 runs a minute apart."""
        touched = self.control.touch(count=count, close=True)
        after = {c["id"]: c for c in self.control.complaints()}
        changed = [
            i for i in self.linked if after[i]["updated_at"] != self.records[i]["updated_at"]
        ]
        closed = sum(1 for i in changed if self.records[i]["status"] != "done" and after[i]["status"] == "done")  # fmt: skip
        shared = len({after[i]["updated_at"] for i in changed})
        print(f"  (d) touched {touched.get('touched')}: {len(changed)} linked changed, {closed} closed by it, "
              f"{shared} distinct updated_at", flush=True)  # fmt: skip
        for run in (1, 2, 3):
            if run > 1:
                self.control.advance_seconds(60)  # inside the 5-minute overlap: all listed again
            self.run(f"(d) {count:,} closed at one moment, run {run}")


def scenarios(dialect: str, complaints: int, touch: int, work: Path, results: Results) -> None:
    lapor = start_lapor(complaints, dialect=dialect)
    with running(lapor):
        agency = start_agency(work / f"{dialect}-agency.sqlite")
        with running(agency):
            # Apply the working-day rules now, so moving the clock later changes nothing by itself.
            lapor.control.advance_seconds(0)
            items = census(lapor.base_url)
            config = settings(connector_mapping(lapor.base_url, agency.base_url, work / f"{dialect}-state.sqlite"))  # fmt: skip
            print(f"  {dialect} dialect: {complaints:,} complaints in LAPOR!, {len(items):,} listed; "
                  f"connector page size {config.lapor.page_size}", flush=True)  # fmt: skip
            run = Scenarios(dialect, lapor.control, config, results)
            run.initial_sync(items)
            run.idle()
            run.ten_changes()
            run.closed_at_once(touch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=2_000, help="complaints in LAPOR!")
    parser.add_argument("--touch", type=int, default=1_200, help="complaints closed at one moment")
    parser.add_argument("--dialects", nargs="+", default=["contract", "counts"])
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.complaints, args.touch = 400, 200
    from connector.logs import configure

    configure("WARNING", "json")
    print(
        f"P2: LAPOR! requests per scenario vs the documented minimum; {args.complaints:,} complaints, "
        f"{args.touch:,} closed at one moment; dialects {', '.join(args.dialects)}; no pacing",
        flush=True,
    )
    results = Results(args.results)
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in args.dialects:
            scenarios(dialect, args.complaints, args.touch, Path(tmp), results)


if __name__ == "__main__":
    main()
