"""Client CPU per LAPOR! request, side by side with bare ``requests`` (run: ``make bench``).

The simulator runs in a separate process, so this process's CPU time (``time.process_time``)
is the client's alone. Each variant fetches the same complaint details; the figures are
medians over several rounds. Absolute numbers drift from run to run: compare the ratios.

    python -m bench.client_overhead [--requests 1000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone

import requests

from bench.harness import API_KEY, INSTITUTION, TOKEN, add_common_arguments, start_lapor
from connector.clock import SystemClock
from connector.config import settings_from_mapping
from connector.lapor import wire
from connector.lapor.client import LaporClient
from connector.logs import configure


def measure(name: str, call: Callable[[int], object], ids: list[int], rounds: int) -> float:
    """Median client CPU µs per call over ``rounds`` passes through ``ids``."""
    samples = []
    for _ in range(rounds):
        cpu = time.process_time()
        for complaint_id in ids:
            call(complaint_id)
        samples.append((time.process_time() - cpu) / len(ids) * 1e6)
    median = statistics.median(samples)
    print(f"  {name:<48} {median:8.0f} µs CPU/request")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds per variant (median reported)"
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 200, 1

    configure("WARNING", "json")  # as the daemon runs: only warnings and errors are rendered
    simulator = start_lapor(300)
    base_url = simulator.base_url
    try:
        settings = settings_from_mapping(
            {
                "lapor": {
                    "base_url": base_url,
                    "institution_id": INSTITUTION,
                    "api_key": "${K}",
                    "token": "${T}",
                    "requests_per_minute": 0,
                }
            },
            env={"K": API_KEY, "T": TOKEN},
        ).lapor
        client = LaporClient(settings, SystemClock())
        visible = [
            c.lapor_id
            for c in client.inbox(datetime(2000, 1, 1, tzinfo=timezone.utc))
            if hasattr(c, "lapor_id")
        ]
        ids = (visible * (args.requests // max(1, len(visible)) + 1))[: args.requests]
        headers = wire.auth_headers(API_KEY, TOKEN)

        def bare(session: requests.Session) -> Callable[[int], object]:
            return lambda i: session.get(
                base_url + wire.complaint_path(i), headers=headers, timeout=10
            ).json()

        default_session = requests.Session()
        quiet_session = requests.Session()
        quiet_session.trust_env = False

        print(
            f"client CPU per complaint-detail request ({len(ids)} requests x {args.rounds} rounds, median)"
        )
        naive = measure("requests.Session, defaults", bare(default_session), ids, args.rounds)
        quiet = measure("requests.Session, trust_env=False", bare(quiet_session), ids, args.rounds)
        measure(
            "LaporTransport.get (pacing, retries, errors)",
            lambda i: client.transport.get(wire.complaint_path(i)),
            ids,
            args.rounds,
        )
        full = measure(
            "LaporClient.complaint (+ validation to model)", client.complaint, ids, args.rounds
        )
        print(f"  connector overhead over a tuned bare session: {full - quiet:+.0f} µs/request")
        print(f"  full client vs requests defaults: {full / naive:.2f}x the CPU")

        cpu, wall = time.process_time(), time.perf_counter()
        listed = sum(
            1 for _ in client.inbox(datetime(2000, 1, 1, tzinfo=timezone.utc), page_size=1000)
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"inbox listing: {listed} complaints in {wall * 1000:.0f} ms, {cpu / max(1, listed) * 1e6:.0f} µs CPU each"
        )
        client.close()
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
