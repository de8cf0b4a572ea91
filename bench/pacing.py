"""P3: pacing under the service's limit: the connector daemon against a LAPOR! simulator that allows 120 requests a minute.

The LAPOR! simulator (``--rate-limit 120``: a sliding 60 s window per token, 429s not counted)
and the agency system run in their own processes, both with a small latency; the LAPOR! inbox
holds a backlog far larger than the run can sync. ``lapor-connector run`` is started with
``requests_per_minute: 115``, stopped with SIGTERM part-way and started again at once (one
writer per state file: the new daemon starts when the old one has exited), and stopped with
SIGTERM at the end. From the simulator's timeline of every API request: the requests admitted in
each sliding 60 s window (windows starting from 5 s after the daemon's first request and ending
by the final SIGTERM, one a second) and over the whole run, as a fraction of the limit; the 429
answers over the whole run and in the 2 s after each SIGTERM; and how long each stop took (target:
within 10 s, the grace period `docker stop` gives; systemd gives 90 s).

    python -m bench.pacing [--complaints 4000] [--duration 180] [--term-at 100] [--stop-timeout 10] [--quick]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    SECRETS,
    LaporServer,
    Results,
    add_common_arguments,
    connector_mapping,
    die_with_parent,
    median,
    running,
    start_agency,
    start_lapor,
    write_config,
)

LIMIT = 120
PACE = 115
MIN_USE = 0.95
WINDOW = 60.0
#: How long a daemon may take to stop before it is killed (and the stop counted as failed).
KILL_AFTER = 30.0


def timeline_offset(lapor: LaporServer) -> float:
    """This process's monotonic clock minus the simulator's timeline clock.

    One request to a path no route matches is put on the timeline (answered 404, before any
    authentication, so it never uses up the rate-limit window); the counters are reset after."""
    control = lapor.control
    control.reset_stats()
    before = time.monotonic()
    control.session.get(f"{lapor.base_url}/bench-clock-probe", timeout=10)
    after = time.monotonic()
    entries = control.stats()["timeline"]
    control.reset_stats()
    if len(entries) != 1:
        raise SystemExit(f"the simulator's timeline holds {len(entries)} entries after one probe")
    return (before + after) / 2 - float(entries[0][0])


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "connector", "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **SECRETS},
            preexec_fn=die_with_parent,
        )  # fmt: skip


def stop_daemon(daemon: subprocess.Popen[bytes]) -> tuple[float, float, int | None]:
    """SIGTERM; return when it was sent, how long the daemon took to exit, and its exit code
    (None: still running after ``KILL_AFTER`` s, so it was killed)."""
    sent = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    try:
        code: int | None = daemon.wait(timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        code = None
    return sent, time.monotonic() - sent, code


def sleep_until(moment: float, daemon: subprocess.Popen[bytes], log: Path) -> None:
    while time.monotonic() < moment:
        if daemon.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"the daemon exited early with code {daemon.returncode}:\n{tail}")
        time.sleep(min(0.2, max(0.0, moment - time.monotonic())))


def windows(
    admitted: list[float], start: float, end: float, *,
    span: tuple[float, float] | None = None, overlapping: bool = False,
) -> list[int]:  # fmt: skip
    """Admitted requests in each 60 s window starting every second in [start, end - 60]; with
    ``span``, only the windows clear of it (or, ``overlapping``, only those that overlap it)."""
    counts = []
    at = start
    while at + WINDOW <= end:
        clear = span is None or at + WINDOW <= span[0] or at >= span[1]
        if span is None or clear != overlapping:
            counts.append(
                bisect.bisect_left(admitted, at + WINDOW) - bisect.bisect_left(admitted, at)
            )
        at += 1.0
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=4_000, help="the backlog in LAPOR!")
    parser.add_argument("--duration", type=float, default=180, help="seconds from start to the last SIGTERM")  # fmt: skip
    parser.add_argument("--term-at", type=float, default=100, help="seconds to the SIGTERM and restart")  # fmt: skip
    parser.add_argument("--latency-ms", type=int, default=5)
    parser.add_argument("--stop-timeout", type=float, default=10, help="seconds a stop may take (the target)")  # fmt: skip
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.term_at = 70, 35
    print(
        f"P3: daemon at requests_per_minute {PACE} against a limit of {LIMIT}/min; {args.complaints:,} complaints "
        f"to sync, {args.latency_ms} ms latency; {args.duration:.0f} s in all, SIGTERM and restart at {args.term_at:.0f} s, "
        f"stop timeout {args.stop_timeout:g} s",
        flush=True,
    )  # fmt: skip
    results = Results(args.results)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lapor = start_lapor(args.complaints, rate_limit=LIMIT, latency_ms=args.latency_ms)
        with running(lapor):
            agency = start_agency(work / "agency.sqlite", latency_ms=args.latency_ms)
            with running(agency):
                config = write_config(work / "config.json", connector_mapping(
                    lapor.base_url, agency.base_url, work / "state.sqlite", requests_per_minute=PACE,
                    logging={"level": "INFO", "format": "json"}))  # fmt: skip
                log = work / "daemon.log"
                offset = timeline_offset(lapor)
                started = time.monotonic()
                daemon = start_daemon(config, log)
                sleep_until(started + args.term_at, daemon, log)
                stops = [stop_daemon(daemon)]
                restarted = time.monotonic()
                daemon = start_daemon(config, log)
                sleep_until(started + args.duration, daemon, log)
                stops.append(stop_daemon(daemon))
                stats = lapor.control.stats()
                agency_requests = agency.control.stats().get("requests", {})
                log_tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    analyse(stats, offset, started, restarted, stops, agency_requests, log_tail, args, results)


def analyse(stats: dict[str, Any], offset: float, started: float, restarted: float,
            stops: list[tuple[float, float, int | None]], agency_requests: dict[str, int], log_tail: str,
            args: argparse.Namespace, results: Results) -> None:  # fmt: skip
    """Print the run's figures and its target lines."""
    entries = [(float(t) + offset, route, status) for t, route, status in stats["timeline"]]
    answered = [(t, int(status)) for t, _, status in entries if status is not None]
    admitted = sorted(t for t, status in answered if status != 429)
    limited = sorted(t for t, status in answered if status == 429)
    end = stops[-1][0]
    if not admitted:
        raise SystemExit(f"the daemon sent no request that was admitted; its log ends:\n{log_tail}")
    first = admitted[0]
    counts = windows(admitted, first + 5, end)
    minutes = (end - first) / 60
    in_run = bisect.bisect_right(admitted, end) - bisect.bisect_left(admitted, first)
    print(
        f"  first request {first - started:.1f} s after the start; {in_run} admitted, {len(limited)} answered 429 "
        f"in {minutes * 60:.0f} s; LAPOR! requests by route: "
        f"{', '.join(f'{r} {n}' for r, n in sorted(stats.get('requests', {}).items()))}; agency: "
        f"{', '.join(f'{r} {n}' for r, n in sorted(agency_requests.items())) or 'none'}",
        flush=True,
    )  # fmt: skip
    restart_gap = [b - a for a, b in itertools.pairwise(admitted) if a <= restarted <= b]
    print(
        f"  restart: no request for {restart_gap[0] if restart_gap else 0:.1f} s around it; "
        f"429s in the 2 s after the restart: {sum(1 for t in limited if restarted <= t < restarted + 2)}",
        flush=True,
    )  # fmt: skip
    gap = next(((a, b) for a, b in itertools.pairwise(admitted) if a <= restarted <= b), None)
    running = windows(admitted, first + 5, end, span=gap)
    around = windows(admitted, first + 5, end, span=gap, overlapping=True) if gap else []
    if counts:
        print(f"  {len(counts)} windows of 60 s: admitted min {min(counts)}, median {median(counts):.0f}, max {max(counts)}")  # fmt: skip
        if gap is not None and around:
            # A window holding the restart reaches 95% only if the restart takes under 0.52 s
            # (the slack 115/min leaves): a figure, not a target; the whole-run line below
            # counts the restart in.
            print(f"  {len(around)} windows holding the restart ({gap[1] - gap[0]:.1f} s with no "
                  f"process sending): min {min(around)} ({min(around) / LIMIT:.3f})", flush=True)  # fmt: skip
        for label, value in (("min", min(running or counts)), ("median", median(counts))):
            kind = " while running" if label == "min" and running else ""
            results.add("P3", f"admitted per sliding 60 s window{kind}, {label}, / {LIMIT}",
                        f"{value / LIMIT:.3f}", f">= {MIN_USE}", value / LIMIT >= MIN_USE,
                        f"{value:.0f} requests")  # fmt: skip
    else:
        results.add("P3", "admitted per sliding 60 s window", "no full window", f">= {MIN_USE}", False)  # fmt: skip
    rate = in_run / minutes
    results.add("P3", f"admitted over the whole run per minute, / {LIMIT}", f"{rate / LIMIT:.3f}",
                f">= {MIN_USE}", rate / LIMIT >= MIN_USE, f"{rate:.1f}/min over {minutes:.2f} min")  # fmt: skip
    results.add("P3", "429 answers in the whole run", str(len(limited)), "0", not limited)
    for n, (sent, took, code) in enumerate(stops, start=1):
        after = sum(1 for t in limited if sent <= t < sent + 2)
        results.add("P3", f"429 answers in the 2 s after SIGTERM {n}", str(after), "0", after == 0)
        took_text = f"{took:.2f} s" if code is not None else f"> {KILL_AFTER:.0f} s"
        results.add("P3", f"stop after SIGTERM {n} (at {sent - started:.0f} s), exit code {code}",
                    took_text, f"<= {args.stop_timeout:g} s", code == 0 and took <= args.stop_timeout,
                    "" if code is not None else "still running: killed")  # fmt: skip


if __name__ == "__main__":
    main()
