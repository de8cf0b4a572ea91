"""P1: initial inbound sync of N complaints from LAPOR! into the agency system, the connector against a naive script.

Both servers (the LAPOR! simulator and the demo agency system) run in their own processes, fresh
for every run; each sync runs in a fresh child process, so its CPU time and peak RSS are the
sync's alone. Runs are interleaved (naive, connector, naive, connector, ...) and the medians
compared, on loopback and with a latency added to every API request on both servers. Printed per
run: complaints per second, requests per complaint, client CPU per complaint, peak memory. The
naive script does what an agency developer typically writes: list a page, GET each detail, POST
each complaint, a new connection per call, a commit per row. The connector runs unpaced
(``requests_per_minute: 0``) with pages of 1,000, like the naive script.

    python -m bench.inbound_sync [--size 10000] [--latency-size 2000] [--latency-ms 30] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    AGENCY_TOKEN,
    API_KEY,
    INSTITUTION,
    TOKEN,
    Results,
    add_common_arguments,
    connector_mapping,
    median,
    peak_mb,
    run_child,
    running,
    settings,
    start_agency,
    start_lapor,
)

PAGE = 1000
KINDS = ("naive", "connector")
MIN_RATIO_LOOPBACK = 2.0
MIN_RATIO_LATENCY = 10.0
MAX_CPU_MS = 1.5
MAX_PEAK_MB = 100.0


def connector_child(lapor_url: str, agency_url: str, state: str) -> dict[str, Any]:
    """Run the inbound flow once, as the daemon would."""
    from connector.clock import SystemClock
    from connector.flows.inbound import run_inbound
    from connector.logs import configure
    from connector.sync import open_sync

    configure("WARNING", "json")
    config = settings(connector_mapping(lapor_url, agency_url, Path(state), page_size=PAGE))
    cpu, wall = time.process_time(), time.perf_counter()
    with open_sync(config, SystemClock()) as sync:
        report = run_inbound(sync)
        requests = sync.lapor.transport.requests_sent + getattr(sync.agency, "requests_sent", 0)
    return {
        "synced": report.created,
        "requests": requests,
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - wall,
    }


def naive_child(lapor_url: str, agency_url: str, state: str) -> dict[str, Any]:
    """The typical hand-written script: a new connection per call, a commit per row."""
    import requests

    lapor_headers = {"Authorization": f"Bearer {API_KEY}", "token": TOKEN}
    agency_headers = {"Authorization": f"Bearer {AGENCY_TOKEN}"}
    db = sqlite3.connect(state)
    db.execute("CREATE TABLE IF NOT EXISTS synced (lapor_id INTEGER PRIMARY KEY, agency_id TEXT)")
    cpu, wall = time.process_time(), time.perf_counter()
    synced = sent = 0
    page = 1
    while True:
        body = requests.get(f"{lapor_url}/complaints/inbox", params={"updated_since": "2000-01-01T00:00:00+00:00", "page": str(page), "page_size": str(PAGE)},
                            headers=lapor_headers, timeout=120).json()["results"]  # fmt: skip
        sent += 1
        for item in body["data"]:
            if item["disposition_id"] != INSTITUTION or item["external_ref"]:
                continue
            detail = requests.get(
                f"{lapor_url}/complaints/{item['id']}/complaint", headers=lapor_headers, timeout=60
            ).json()["results"]["data"]
            created = requests.post(f"{agency_url}/complaints", headers={**agency_headers, "Idempotency-Key": f"naive:{item['id']}"}, timeout=60, json={
                "source": "lapor", "channel": "lapor", "title": detail["title"], "content": detail["content"], "status": "baru",
                "is_secret": detail["is_secret"], "is_anonymous": detail["is_anonymous"],
                "lapor": {"id": detail["id"], "tracking_id": detail["tracking_id"]}}).json()  # fmt: skip
            sent += 2
            db.execute("INSERT OR REPLACE INTO synced VALUES (?, ?)", [item["id"], created["id"]])
            db.commit()
            synced += 1
        if not body["next_page_url"]:
            break
        page += 1
    return {
        "synced": synced,
        "requests": sent,
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - wall,
    }


def measure(kind: str, size: int, latency_ms: int, work: Path, run: int) -> dict[str, Any]:
    """One sync of ``size`` complaints by ``kind`` against fresh servers."""
    name = f"{kind}-{size}-{latency_ms}ms-{run}"
    lapor = start_lapor(size, latency_ms=latency_ms)
    with running(lapor):
        agency = start_agency(work / f"{name}-agency.sqlite", latency_ms=latency_ms)
        with running(agency):
            return run_child("bench.inbound_sync", kind, lapor.base_url, agency.base_url,
                             str(work / f"{name}-state.sqlite"))  # fmt: skip


def compare(size: int, latency_ms: int, runs: int, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Interleaved runs of both kinds; print each run; return the figures by kind."""
    where = f"{latency_ms} ms latency" if latency_ms else "loopback"
    figures: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for run in range(1, runs + 1):
        for kind in KINDS:
            f = measure(kind, size, latency_ms, work, run)
            f["rate"] = f["synced"] / f["wall"]
            figures[kind].append(f)
            minimum = math.ceil(size / PAGE) + 3 * f["synced"]  # pages + C2 + C3 + agency create
            print(
                f"  {where}, {size:,} in LAPOR!, run {run}, {kind:<9}: {f['synced']} synced in {f['wall']:.1f} s = {f['rate']:.0f}/s; "
                f"{f['requests'] / max(1, f['synced']):.2f} requests/complaint (minimum {minimum / max(1, f['synced']):.2f}); "
                f"{f['cpu'] / max(1, f['synced']) * 1e6:.0f} µs CPU/complaint; peak RSS {f['peak_mb']:.1f} MB",
                flush=True,
            )  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="complaints on loopback")
    parser.add_argument("--latency-size", type=int, default=2_000, help="complaints with latency")
    parser.add_argument("--latency-ms", type=int, default=30, help="latency per API request")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (median)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.child:
        kind, lapor_url, agency_url, state = args.child
        figures = (connector_child if kind == "connector" else naive_child)(
            lapor_url, agency_url, state
        )
        figures["peak_mb"] = peak_mb()
        print(json.dumps(figures))
        return
    if args.quick:
        args.size, args.latency_size, args.runs = 500, 100, 1
    print(
        f"P1: initial inbound sync, naive script vs connector, interleaved, median of {args.runs}: "
        f"{args.size:,} complaints in LAPOR! on loopback, {args.latency_size:,} with "
        f"{args.latency_ms} ms latency on both servers; pages of {PAGE}, no pacing",
        flush=True,
    )
    results = Results(args.results)
    with tempfile.TemporaryDirectory() as tmp:
        loopback = compare(args.size, 0, args.runs, Path(tmp))
        slow = compare(args.latency_size, args.latency_ms, args.runs, Path(tmp))

    def rates(figures: dict[str, list[dict[str, Any]]], kind: str) -> float:
        return median([f["rate"] for f in figures[kind]])

    for figures, where, size, minimum in (
        (loopback, "loopback", args.size, MIN_RATIO_LOOPBACK),
        (slow, f"{args.latency_ms} ms latency", args.latency_size, MIN_RATIO_LATENCY),
    ):
        ours, naive = rates(figures, "connector"), rates(figures, "naive")
        results.add("P1", f"sync rate vs naive script, {where}, {size:,} complaints",
                    f"{ours / naive:.2f}x", f">= {minimum:g}x", ours / naive >= minimum,
                    f"{ours:.0f}/s vs {naive:.0f}/s")  # fmt: skip
    cpu = {
        kind: median([f["cpu"] / max(1, f["synced"]) * 1e3 for f in loopback[kind]])
        for kind in KINDS
    }
    results.add("P1", f"connector client CPU per complaint, loopback, {args.size:,}",
                f"{cpu['connector']:.2f} ms", f"<= {MAX_CPU_MS} ms", cpu["connector"] <= MAX_CPU_MS,
                f"the naive script: {cpu['naive']:.2f} ms in the same runs")  # fmt: skip
    peak = max(f["peak_mb"] for f in loopback["connector"])
    results.add("P4", f"full initial sync peak RSS at {args.size:,} complaints",
                f"{peak:.1f} MB", f"< {MAX_PEAK_MB:.0f} MB", peak < MAX_PEAK_MB)  # fmt: skip


if __name__ == "__main__":
    main()
