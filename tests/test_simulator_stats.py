"""What the simulators count for benchmarks: answers per status, 429s, the timeline, the rate window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.traffic import STARTED, SlidingWindow, Traffic
from tests.conftest import API_KEY, AUTH, INSTITUTION_ID, TOKEN


@pytest.fixture
def limited() -> Iterator[LaporSimulator]:
    """A simulator allowing 3 requests a minute per token."""
    with LaporSimulator(
        complaints=10, api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID,
        requests_per_minute=3,
    ).start() as simulator:  # fmt: skip
        yield simulator


def statuses_of(http: requests.Session, sim: LaporSimulator, count: int) -> list[int]:
    url = sim.base_url + "/masters/statuses"
    return [http.get(url, headers=AUTH, timeout=5).status_code for _ in range(count)]


def test_answers_are_counted_per_status(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """Every API answer counts under its status code; control-plane calls do not."""
    control.add_fault("statuses", "server_error", count=1)
    control.add_fault("categories", "rate_limit", count=2)
    http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=5)  # 500
    http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=5)  # 200
    http.get(sim.base_url + "/masters/statuses", timeout=5)  # 401
    http.get(sim.base_url + "/no/such/route", headers=AUTH, timeout=5)  # 404
    for _ in range(3):
        http.get(sim.base_url + "/masters/categories", headers=AUTH, timeout=5)  # 429, 429, 200
    stats = control.stats()
    assert stats["statuses"] == {"200": 2, "401": 1, "404": 1, "429": 2, "500": 1}
    assert control.statuses() == {200: 2, 401: 1, 404: 1, 429: 2, 500: 1}
    assert stats["rate_limited"] == 2
    assert stats["requests"] == {"statuses": 3, "categories": 3}


def test_the_limiters_429s_are_counted(http: requests.Session, limited: LaporSimulator) -> None:
    """Past the limit, 429 answers show in statuses and rate_limited."""
    assert statuses_of(http, limited, 5) == [200, 200, 200, 429, 429]
    stats = SimControl(limited.root_url).stats()
    assert (stats["statuses"]["429"], stats["rate_limited"]) == (2, 2)


def test_a_429_does_not_use_up_the_window(http: requests.Session, limited: LaporSimulator) -> None:
    """Requests a fault rule answered 429 leave the window's 3 requests a minute untouched."""
    SimControl(limited.root_url).add_fault("statuses", "rate_limit", count=2)
    assert statuses_of(http, limited, 6) == [429, 429, 200, 200, 200, 429]


def test_the_window_slides_over_sixty_seconds() -> None:
    """At most 3 admitted requests in any 60 s; a slot frees 60 s after the request that took it."""
    window = SlidingWindow()
    for moment in (0.0, 10.0, 20.0):
        assert window.admit("t", moment, 3) is None
    assert window.admit("t", 30.0, 3) == pytest.approx(30.0)  # refused, and not counted
    assert window.admit("t", 59.9, 3) == pytest.approx(0.1)
    assert window.admit("t", 60.0, 3) is None  # the request at 0 s left the window
    assert window.admit("t", 65.0, 3) == pytest.approx(5.0)  # the one at 10 s leaves at 70 s
    assert window.admit("t", 70.0, 3) is None
    assert window.admit("other", 70.0, 3) is None  # per token
    assert window.admit("t", 70.0, 0) is None  # no limit


def test_a_forgotten_request_frees_its_slot() -> None:
    """forget takes back one admitted request (answered 429 after all)."""
    window = SlidingWindow()
    for moment in (0.0, 1.0):
        window.admit("t", moment, 2)
    window.forget("t", 1.0)
    assert window.admit("t", 2.0, 2) is None
    assert window.admit("t", 3.0, 2) == pytest.approx(57.0)  # the request at 0 s leaves at 60 s


def test_the_timeline_lists_requests_in_arrival_order(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """[t, route, status] per API request, t in seconds on the monotonic clock since start."""
    before = time.monotonic() - STARTED
    http.get(sim.base_url + "/masters/categories", headers=AUTH, timeout=5)
    http.get(sim.base_url + "/complaints/inbox", headers=AUTH, timeout=5)  # 422: no updated_since
    http.get(sim.base_url + "/complaints/1/complaint", headers=AUTH, timeout=5)
    http.get(sim.base_url + "/no/such/route", headers=AUTH, timeout=5)
    control.add_fault("statuses", "drop_after_commit", count=1)
    with pytest.raises(requests.ConnectionError):
        http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=5)
    control.now()  # the control plane is not on the timeline
    timeline = control.timeline()
    after = time.monotonic() - STARTED
    assert [(route, status) for _, route, status in timeline] == [
        ("categories", 200),
        ("inbox", 422),
        ("complaint", 404),
        ("unknown", 404),
        ("statuses", 0),  # dropped without an answer
    ]
    assert control.statuses()[0] == 1
    times = [t for t, _, _ in timeline]
    assert times == sorted(times)
    assert before <= times[0] <= times[-1] <= after


def test_the_timeline_keeps_only_the_most_recent() -> None:
    """Past its limit, the oldest entries make room."""
    traffic = Traffic(limit=3)
    for route in ("a", "b", "c", "d"):
        traffic.answered(traffic.arrived(route), 200)
    entries = traffic.snapshot()["timeline"]
    assert [route for _, route, _ in entries] == ["b", "c", "d"]
    assert traffic.snapshot()["statuses"]["200"] == 4


def test_an_unanswered_request_has_no_status_yet() -> None:
    """A request still being answered shows status null; one from before a reset is not counted."""
    traffic = Traffic()
    early = traffic.arrived("inbox")
    assert traffic.snapshot()["timeline"][0][2] is None
    traffic.reset()
    traffic.answered(early, 200)
    assert traffic.snapshot() == {"statuses": {"200": 0, "429": 0}, "rate_limited": 0,
                                  "timeline": []}  # fmt: skip


def test_reset_stats_zeroes_the_counters_not_the_world(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """POST /_sim/stats/reset empties requests, writes, statuses, rate_limited and the timeline."""
    complaint_id = control.submit(title="Tetap ada", content="Isi")
    control.dispose(complaint_id, INSTITUTION_ID)
    http.post(sim.base_url + "/complaints/followup/add", headers=AUTH, timeout=5,
              json={"complaint_id": complaint_id, "content": "Ditangani"})  # fmt: skip
    control.add_fault("statuses", "rate_limit", count=1)
    http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=5)
    assert control.writes("followup_add") == 1
    control.reset_stats()
    stats = control.stats()
    assert (stats["requests"], stats["writes"], stats["rate_limited"], stats["timeline"]) == (
        {}, {}, 0, []
    )  # fmt: skip
    assert stats["statuses"] == {"200": 0, "429": 0}
    assert complaint_id in sim.state.complaints
    assert len(control.followups(complaint_id)) == 1


def test_a_world_reset_zeroes_the_stats_too(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """POST /_sim/reset starts every counter again, as it always did for requests and writes."""
    http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=5)
    control.reset(complaints=5)
    assert control.stats()["timeline"] == []
    assert control.statuses() == {200: 0, 429: 0}


def test_stats_can_leave_the_timeline_out(sim: LaporSimulator, http: requests.Session) -> None:
    """GET /_sim/stats?timeline=0 answers the counters only (the per-route helpers use it)."""
    light = http.get(sim.root_url + "/_sim/stats", params={"timeline": "0"}, timeout=5).json()
    assert "timeline" not in light
    assert {"requests", "writes", "now", "dialect", "statuses", "rate_limited"} <= set(light)


def test_the_agency_counts_requests_by_route(tmp_path: Path, http: requests.Session) -> None:
    """GET /_sim/stats of the agency system tells its API requests per route."""
    with AgencySystem(tmp_path / "a.sqlite", token="t0k", complaints=2).start() as agency:
        headers = {"Authorization": "Bearer t0k"}
        for path in ("/statuses", "/statuses", "/complaints"):
            http.get(agency.base_url + path, headers=headers, timeout=5)
        control = AgencyControl(agency.root_url)
        assert control.stats()["requests"] == {"statuses": 2, "complaints": 1}
        assert control.requests("statuses") == 2
