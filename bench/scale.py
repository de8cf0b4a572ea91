"""P5: one inbound run with 10 changes when 2,000 complaints are linked against when 100,000 are.

For each size a LAPOR! simulator (``counts`` dialect, which makes the initial sync cheaper) and an
agency system run in their own processes; the initial sync that links the complaints runs in a
child process (its time, CPU and peak RSS are printed as the setup). Then runs are interleaved,
small, large, small, large, ...: each in a fresh child process that first opens the state once
(the per-process check of the state file, as a daemon does at start), makes 10 fresh changes
through the control plane (5 citizen replies, 3 admin notes, 2 admin closes on linked complaints
still open), resets the LAPOR! counters and then times one inbound run (``open_sync`` + the
inbound flow). Compared: the LAPOR! requests of a run (target: equal) and its wall time (median;
target: within 1.2x). The large size is 100,000 linked complaints, or the largest of 50,000 and
20,000 whose initial sync fits ``--setup-budget`` at the rate the small setup showed.

    python -m bench.scale [--small 2000] [--large 0 (choose)] [--setup-budget 360] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    API_KEY,
    CONTROL_TIMEOUT,
    INSTITUTION,
    TOKEN,
    LaporServer,
    Results,
    add_common_arguments,
    change,
    connector_mapping,
    inbound_cycle,
    lapor_requests,
    median,
    peak_mb,
    run_child,
    settings,
    start_agency,
    start_lapor,
    write_config,
)
from connector.simulators.lapor import SimControl

#: Share of the simulator's generated complaints that end up disposed to the agency (its seed).
OWN_SHARE = 0.755
LARGE_SIZES = (100_000, 50_000, 20_000)
MAX_WALL_RATIO = 1.2
#: The setup's rate drops as the state grows; projections allow for this much.
SLOWDOWN = 1.3
TERMINAL = {"done", "archived", "rejected"}
ACTIONS = ["reply"] * 5 + ["note"] * 3 + ["close"] * 2


@dataclass
class Size:
    """One size: its configuration, its setup's figures and the changes of its runs."""

    config: Path
    setup: dict[str, Any]
    changes: list[list[int]]  #: the linked complaints each run changes, 10 a run
    inbox_ms: float  #: the simulator's own time for an inbox page listing nothing new

    @property
    def linked(self) -> int:
        return int(self.setup["created"])


def _config(path: str) -> Any:
    return settings(json.loads(Path(path).read_text(encoding="utf-8")))


def setup_child(config_path: str) -> dict[str, Any]:
    """Child: the initial sync that links the complaints."""
    from connector.logs import configure

    configure("WARNING", "json")
    figures = inbound_cycle(_config(config_path), timeout=3600)
    return {**figures, "peak_mb": peak_mb()}


def cycle_child(config_path: str, ids: str) -> dict[str, Any]:
    """Child: open the state once, make 10 changes, then time one inbound run."""
    from connector.clock import SystemClock
    from connector.logs import configure
    from connector.sync import open_sync

    configure("WARNING", "json")
    config = _config(config_path)
    with open_sync(config, SystemClock()):
        pass  # the per-process check of the state file, as a daemon makes it once at start
    control = SimControl(
        config.lapor.base_url.removesuffix("/lapor/3.0.0"), timeout=CONTROL_TIMEOUT
    )
    for n, (action, complaint_id) in enumerate(zip(ACTIONS, json.loads(ids), strict=True)):
        change(control, action, complaint_id, f"Perubahan skala {n}")
    control.reset_stats()
    figures = inbound_cycle(config, timeout=600)
    return {**figures, "requests": lapor_requests(control.stats())}


def inbox_ms(lapor: LaporServer) -> float:
    """The simulator's own time for one inbox request that lists nothing new (median of 5)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers.update({"Authorization": f"Bearer {API_KEY}", "token": TOKEN})
    now = lapor.control.stats()["now"]
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        session.get(f"{lapor.base_url}/complaints/inbox", params={"updated_since": now, "page_size": "1000"}, timeout=60).raise_for_status()  # fmt: skip
        samples.append((time.perf_counter() - started) * 1000)
    lapor.control.reset_stats()
    return median(samples)


def prepare(linked_target: int, runs: int, work: Path, servers: ExitStack) -> Size:
    """Start the servers for one size (stopped with ``servers``) and link its complaints."""
    total = round(linked_target / OWN_SHARE)
    lapor = start_lapor(total, dialect="counts")
    servers.callback(lapor.stop)
    agency = start_agency(work / f"agency-{linked_target}.sqlite")
    servers.callback(agency.stop)
    # The simulated clock never moves here, so its working-day rules (auto-closes) never fire:
    # every run lists only the changes the benchmark made.
    config = write_config(work / f"config-{linked_target}.json", connector_mapping(
        lapor.base_url, agency.base_url, work / f"state-{linked_target}.sqlite"))  # fmt: skip
    setup = run_child("bench.scale", "setup", str(config))
    open_linked = sorted(
        c["id"]
        for c in lapor.control.complaints()
        if c["disposition_id"] == INSTITUTION
        and not c["external_ref"]
        and c["status"] not in TERMINAL
    )
    chosen = open_linked[:: max(1, len(open_linked) // (10 * runs))][: 10 * runs]
    if len(chosen) < 10 * runs:
        raise SystemExit(f"only {len(open_linked)} open linked complaints for {runs} runs of 10 changes")  # fmt: skip
    size = Size(
        config, setup, [chosen[i * 10 : (i + 1) * 10] for i in range(runs)], inbox_ms(lapor)
    )
    print(
        f"  setup: {size.linked:,} linked ({total:,} complaints in LAPOR!) in {setup['wall']:.1f} s = "
        f"{size.linked / setup['wall']:.0f}/s; {setup['cpu'] / max(1, size.linked) * 1e6:.0f} µs CPU each; "
        f"peak RSS {setup['peak_mb']:.1f} MB; the simulator answers an empty inbox page in {size.inbox_ms:.1f} ms",
        flush=True,
    )  # fmt: skip
    return size


def choose_large(small: Size, budget: float) -> int:
    rate = small.linked / small.setup["wall"]
    for candidate in LARGE_SIZES:
        projected = candidate / rate * SLOWDOWN
        if projected <= budget:
            break
    print(
        f"  large size: {candidate:,} linked (initial sync projected at {projected:.0f} s from the small "
        f"setup's {rate:.0f}/s x {SLOWDOWN}; budget {budget:.0f} s; tried {', '.join(f'{c:,}' for c in LARGE_SIZES)})",
        flush=True,
    )  # fmt: skip
    return candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="linked complaints, small size")
    parser.add_argument("--large", type=int, default=0, help="linked complaints, large size (0: choose)")  # fmt: skip
    parser.add_argument("--setup-budget", type=float, default=360, help="seconds the large initial sync may take")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="measured runs per size (median)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(setup_child(*rest) if kind == "setup" else cycle_child(*rest)))
        return
    if args.quick:
        args.small, args.large, args.runs = 200, 1_000, 1
    wanted = f"{args.large:,} linked" if args.large else "the size chosen below"
    print(
        f"P5: one inbound run with 10 changes at {args.small:,} linked complaints vs {wanted}; counts "
        f"dialect, no pacing, default page size; median of {args.runs} interleaved runs",
        flush=True,
    )
    results = Results(args.results)
    figures: dict[int, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as servers:
        work = Path(tmp)
        small = prepare(args.small, args.runs, work, servers)
        large_target = args.large or choose_large(small, args.setup_budget)
        large = prepare(large_target, args.runs, work, servers)
        for run in range(args.runs):
            for size in (small, large):
                f = run_child("bench.scale", "cycle", str(size.config), json.dumps(size.changes[run]))  # fmt: skip
                figures.setdefault(size.linked, []).append(f)
                print(
                    f"  run {run + 1}, {size.linked:>7,} linked: {sum(f['requests'].values())} LAPOR! requests "
                    f"({', '.join(f'{r} {n}' for r, n in f['requests'].items())}), {f['wall'] * 1000:.0f} ms, "
                    f"{f['cpu'] * 1000:.0f} ms CPU; {f['updated']} updated, {f['replies']} replies",
                    flush=True,
                )  # fmt: skip
    judge(small, large, figures, results)


def judge(small: Size, large: Size, figures: dict[int, list[dict[str, Any]]], results: Results) -> None:  # fmt: skip
    def requests_of(size: Size) -> list[int]:
        return [sum(f["requests"].values()) for f in figures[size.linked]]

    def wall_of(size: Size) -> float:
        return median([f["wall"] for f in figures[size.linked]])

    few, many = requests_of(small), requests_of(large)
    results.add("P5", f"LAPOR! requests of a run, {large.linked:,} vs {small.linked:,} linked",
                f"{median(many):.0f} vs {median(few):.0f}", "equal", median(many) == median(few),
                f"each run: {many} vs {few}")  # fmt: skip
    ratio = wall_of(large) / wall_of(small)
    inbox_requests = median([f["requests"].get("inbox", 0) for f in figures[large.linked]])
    simulator_extra = max(0.0, (large.inbox_ms - small.inbox_ms) / 1000 * inbox_requests)
    results.add("P5", f"wall time of a run, {large.linked:,} vs {small.linked:,} linked",
                f"{ratio:.2f}x", f"<= {MAX_WALL_RATIO}", ratio <= MAX_WALL_RATIO,
                f"{wall_of(large) * 1000:.0f} vs {wall_of(small) * 1000:.0f} ms; of the difference, "
                f"{simulator_extra * 1000:.0f} ms is the simulator's own slower inbox")  # fmt: skip
    print(
        f"  (P4, full initial sync: peak RSS {large.setup['peak_mb']:.1f} MB at {large.linked:,} linked vs "
        f"{small.setup['peak_mb']:.1f} MB at {small.linked:,} = {large.setup['peak_mb'] / small.setup['peak_mb']:.3f}x; "
        f"setup {large.setup['wall']:.0f} s vs {small.setup['wall']:.0f} s)",
        flush=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
