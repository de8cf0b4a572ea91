"""Peak memory of the client while listing the whole inbox: 10k against 100k complaints.

The simulator runs in its own process; each listing runs in a fresh child process whose peak
RSS (``ru_maxrss``) is the client's alone. A streaming client's peak should not grow with the
number of pages.

    python bench/listing_memory.py [--sizes 10000 100000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.client_overhead import API_KEY, INSTITUTION, TOKEN, start_simulator


def list_inbox(base_url: str, page_size: int) -> None:
    """Child process: list everything, print count, seconds and peak RSS as JSON."""
    from connector.clock import SystemClock
    from connector.config import settings_from_mapping
    from connector.lapor.client import LaporClient
    from connector.logs import configure
    from connector.models import ComplaintSummary

    configure("WARNING", "json")
    settings = settings_from_mapping(
        {"lapor": {"base_url": base_url, "institution_id": INSTITUTION, "api_key": "${K}", "token": "${T}",
                   "requests_per_minute": 0, "timeouts": {"read": 120}}},
        env={"K": API_KEY, "T": TOKEN},
    ).lapor  # fmt: skip
    started = time.perf_counter()
    with LaporClient(settings, SystemClock()) as client:
        listing = client.inbox(datetime(2000, 1, 1, tzinfo=timezone.utc), page_size=page_size)
        count = sum(1 for item in listing if isinstance(item, ComplaintSummary))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "count": count,
                "seconds": time.perf_counter() - started,
                "requests": listing.stats.requests,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        list_inbox(args.child, args.page_size)
        return
    results = []
    for size in args.sizes:
        process, base_url = start_simulator(complaints=size)
        try:
            out = subprocess.run(  # noqa: S603 (our own interpreter and script)
                [sys.executable, "-m", "bench.listing_memory", "--child", base_url, "--page-size", str(args.page_size)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=10)
        figures = json.loads(out.strip().splitlines()[-1])
        results.append((size, figures))
        print(
            f"{size:>7} complaints in the simulator: listed {figures['count']} in {figures['requests']} requests, "
            f"{figures['seconds']:.1f} s, peak RSS {figures['peak_mb']:.1f} MB"
        )
    if len(results) > 1:
        (small, a), (large, b) = results[0], results[-1]
        print(f"peak memory at {large} vs {small}: {b['peak_mb'] / a['peak_mb']:.3f}x")


if __name__ == "__main__":
    main()
