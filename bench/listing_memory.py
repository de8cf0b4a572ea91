"""P4: peak memory of the client while listing the whole inbox, 10k against 100k complaints.

The simulator runs in its own process; each listing runs in a fresh child process whose peak
RSS (``ru_maxrss``) is the client's alone. A streaming client's peak should not grow with the
number of pages. This is the listing alone (a full initial sync of 100,000 complaints takes
minutes; ``bench.inbound_sync`` reports the full sync's peak at 10,000, ``bench.scale`` at its
largest size).

    python -m bench.listing_memory [--sizes 10000 100000] [--page-size 1000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

from bench.harness import (
    API_KEY,
    INSTITUTION,
    TOKEN,
    Results,
    add_common_arguments,
    peak_mb,
    run_child,
    start_lapor,
)

MAX_PEAK_MB = 100.0
MAX_GROWTH = 1.1


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
    print(
        json.dumps(
            {
                "count": count,
                "seconds": time.perf_counter() - started,
                "requests": listing.stats.requests,
                "peak_mb": peak_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.child:
        list_inbox(args.child[0], int(args.child[1]))
        return
    if args.quick:
        args.sizes = [2_000, 10_000]
    print(
        f"P4: peak RSS of listing the whole inbox (listing only), page size {args.page_size}, "
        f"sizes {', '.join(f'{s:,}' for s in args.sizes)}",
        flush=True,
    )
    results = Results(args.results)
    peaks = []
    for size in args.sizes:
        simulator = start_lapor(size)
        try:
            figures = run_child("bench.listing_memory", simulator.base_url, str(args.page_size))
        finally:
            simulator.stop()
        peaks.append((size, figures["peak_mb"]))
        print(
            f"  {size:>7} complaints in the simulator: listed {figures['count']} in {figures['requests']} requests, "
            f"{figures['seconds']:.1f} s, peak RSS {figures['peak_mb']:.1f} MB",
            flush=True,
        )
    (small, low), (large, high) = peaks[0], peaks[-1]
    results.add("P4", f"listing peak RSS, {large:,} vs {small:,} complaints (listing only)",
                f"{high / low:.3f}x", f"<= {MAX_GROWTH}", high / low <= MAX_GROWTH,
                f"{high:.1f} vs {low:.1f} MB")  # fmt: skip
    results.add("P4", f"listing peak RSS at {large:,} complaints", f"{high:.1f} MB",
                f"< {MAX_PEAK_MB:.0f} MB", high < MAX_PEAK_MB)  # fmt: skip


if __name__ == "__main__":
    main()
