"""Initial inbound sync: N complaints from LAPOR! into the agency system, the connector against a naive script.

Both servers (the LAPOR! simulator and the demo agency system) run in their own processes; each
sync runs in a fresh child process, so its CPU time and peak RSS are the sync's alone. Printed
per size: complaints per second, requests per complaint (and the contract's minimum), client CPU
per complaint, peak memory. The naive script does what an agency developer typically writes:
list a page, GET each detail, POST each complaint, a new connection per call, a commit per row.

    python -m bench.inbound_sync [--sizes 10000 100000] [--naive-up-to 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.client_overhead import API_KEY, INSTITUTION, TOKEN, start_simulator

ROOT = Path(__file__).resolve().parents[1]
AGENCY_TOKEN = "bench-agency-token"  # noqa: S105 (the demo system's test token)
PAGE = 1000


def start_agency(db: Path) -> tuple[subprocess.Popen[str], str]:
    """``lapor-connector simulate agency`` on a free port; return it and its base URL."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "connector", "simulate", "agency", "--port", "0", "--db", str(db),
         "--token", AGENCY_TOKEN, "--complaints", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/api/v1)", line)
    if not match:
        process.kill()
        raise SystemExit("the agency system did not start")
    return process, match.group(1)


def connector_child(lapor_url: str, agency_url: str, state: str) -> dict[str, Any]:
    """Run the inbound flow once, as the daemon would."""
    from connector.clock import SystemClock
    from connector.config import settings_from_mapping
    from connector.flows.inbound import run_inbound
    from connector.logs import configure
    from connector.sync import open_sync

    configure("WARNING", "json")
    settings = settings_from_mapping(
        {"lapor": {"base_url": lapor_url, "institution_id": INSTITUTION, "api_key": "${K}", "token": "${T}",
                   "requests_per_minute": 0, "page_size": PAGE, "timeouts": {"read": 120}},
         "agency": {"base_url": agency_url, "token": "${A}"},
         "state": {"path": state}, "mappings": {"path": str(ROOT / "mappings")}},
        env={"K": API_KEY, "T": TOKEN, "A": AGENCY_TOKEN},
    )  # fmt: skip
    cpu, wall = time.process_time(), time.perf_counter()
    with open_sync(settings, SystemClock()) as sync:
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
        body = requests.get(f"{lapor_url}/complaints/inbox", params={"updated_since": "2000-01-01T00:00:00+00:00", "page": page, "page_size": PAGE},
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


def run_child(kind: str, lapor_url: str, agency_url: str, state: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-m", "bench.inbound_sync", "--child", kind, lapor_url, agency_url, state],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def measure(kind: str, size: int, work: Path) -> dict[str, Any]:
    lapor, lapor_url = start_simulator(complaints=size)
    processes = [lapor]
    try:
        agency, agency_url = start_agency(work / f"{kind}-{size}-agency.sqlite")
        processes.append(agency)
        return run_child(kind, lapor_url, agency_url, str(work / f"{kind}-{size}-state.sqlite"))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--naive-up-to", type=int, default=10_000, help="run the naive script only up to this size"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, lapor_url, agency_url, state = args.child
        figures = (connector_child if kind == "connector" else naive_child)(
            lapor_url, agency_url, state
        )
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            kinds = ["connector", "naive"] if size <= args.naive_up_to else ["connector"]
            results = {kind: measure(kind, size, Path(tmp)) for kind in kinds}
            for kind, f in results.items():
                rate = f["synced"] / f["wall"]
                minimum = (
                    math.ceil(size / PAGE) + 3 * f["synced"]
                )  # list pages + C2 + C3 + agency create, per complaint
                print(
                    f"{size:>7} in LAPOR!, {kind:<9}: {f['synced']} synced in {f['wall']:.1f} s = {rate:.0f}/s; "
                    f"{f['requests'] / max(1, f['synced']):.2f} requests/complaint (minimum {minimum / max(1, f['synced']):.2f}); "
                    f"{f['cpu'] / max(1, f['synced']) * 1e6:.0f} µs CPU/complaint; peak RSS {f['peak_mb']:.1f} MB"
                )
            if "naive" in results:
                ours, naive = results["connector"], results["naive"]
                print(
                    f"         connector vs naive: {(ours['synced'] / ours['wall']) / (naive['synced'] / naive['wall']):.2f}x the rate"
                )
            peaks[size] = results["connector"]["peak_mb"]
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        print(f"connector peak memory at {large} vs {small}: {peaks[large] / peaks[small]:.3f}x")


if __name__ == "__main__":
    main()
