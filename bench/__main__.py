"""Every benchmark in turn, then one table of the P1-P5 target lines (``make bench``).

Each benchmark runs in its own process with its output as it comes; the target lines are
collected through ``--results``. A missed target is a FAIL in the table; a benchmark that could
not run (a server did not start, a run hung) makes the exit code non-zero.

    python -m bench [--quick] [--only economy pacing ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Target

SCRIPTS = ("client_overhead", "inbound_sync", "listing_memory", "economy", "pacing", "scale")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition each")
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these benchmarks")
    args = parser.parse_args()
    started = time.monotonic()
    failed: list[str] = []
    took: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        for name in args.only or SCRIPTS:
            print(f"\n=== bench.{name}{' --quick' if args.quick else ''}", flush=True)
            begun = time.monotonic()
            code = subprocess.call(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else []), "--results", str(results)],
                cwd=ROOT,
            )  # fmt: skip
            took[name] = time.monotonic() - begun
            if code != 0:
                failed.append(f"bench.{name} (exit code {code})")
        targets = [Target(**json.loads(line)) for line in results.read_text(encoding="utf-8").splitlines()]  # fmt: skip
    print(f"\n=== summary{' (quick: smoke-test sizes, one repetition)' if args.quick else ''}")
    for target in sorted(targets, key=lambda t: t.figure):  # stable: each figure's lines in order
        print(target.line())
    passed = sum(t.passed for t in targets)
    print(
        f"{passed} of {len(targets)} targets met; "
        f"{', '.join(f'{name} {seconds:.0f} s' for name, seconds in took.items())}; "
        f"{(time.monotonic() - started) / 60:.1f} min in all"
    )
    if failed:
        print(f"did not finish: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
