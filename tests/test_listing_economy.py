"""The inbox listing pays for what it lists, once: a keyset that does not re-read long runs.

These tests run the real client against a deliberately small inbox server of their own (a
second reading of C1: ``updated_since`` inclusive, ordered by ``(updated_at, id)``, Laravel
pages), so each request can be counted and a record can be moved between two requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connector.clock import FakeClock
from connector.lapor.client import LaporClient
from tests.conftest import INSTITUTION_ID, make_settings

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


class Inbox:
    """Complaints as (updated_at, id); ``between`` runs before each answer is built."""

    def __init__(self) -> None:
        self.items: dict[int, datetime] = {}
        self.requests: list[dict[str, str]] = []
        self.between: Callable[[int], None] = lambda count: None
        self.lock = threading.Lock()

    def answer(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(query)
            self.between(len(self.requests))
            since = datetime.fromisoformat(query["updated_since"])
            page, size = int(query.get("page", "1")), int(query.get("page_size", "50"))
            rows = sorted((at, i) for i, at in self.items.items() if at >= since)
            chunk = rows[(page - 1) * size : page * size]
            more = page * size < len(rows)
            return {
                "status": True,
                "message": "Success",
                "results": {
                    "data": [summary(i, at) for at, i in chunk],
                    "current_page": page,
                    "per_page": size,
                    "total": len(rows),
                    "next_page_url": f"http://x/inbox?page={page + 1}" if more else None,
                    "server_time": (T0 + timedelta(days=1)).isoformat(),
                },
            }


def summary(complaint_id: int, at: datetime) -> dict[str, Any]:
    return {
        "id": complaint_id,
        "tracking_id": str(1900000 + complaint_id),
        "title": "Jalan rusak",
        "status_code": "verified",
        "status_name": "Terverifikasi",
        "disposition_id": INSTITUTION_ID,
        "is_secret": False,
        "is_anonymous": False,
        "created_at": "02-11-2026 08:00:00",
        "updated_at": at.isoformat(),
    }


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    state = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            body = json.dumps(state.answer(query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/lapor/3.0.0"
    server.shutdown()
    server.server_close()


def listed(base_url: str, page_size: int) -> tuple[list[tuple[int, datetime]], Any]:
    with LaporClient(make_settings(base_url, page_size=page_size), FakeClock()) as client:
        listing = client.inbox(T0 - timedelta(minutes=5))
        keys = [(c.lapor_id, c.updated_at) for c in listing if hasattr(c, "lapor_id")]
        return keys, listing.stats


def test_a_thousand_and_two_hundred_sharing_one_timestamp_cost_two_pages(
    inbox: tuple[Inbox, str],
) -> None:
    state, url = inbox
    state.items = {i: T0 for i in range(1, 1201)}
    keys, stats = listed(url, 1000)
    assert sorted(i for i, _ in keys) == list(range(1, 1201))
    assert len(state.requests) == 2, "ceil(1200 / 1000) requests, not a re-walk per page"
    assert stats.duplicates_dropped == 0


def test_a_run_before_the_end_of_the_list_is_still_read_by_page_number(
    inbox: tuple[Inbox, str],
) -> None:
    state, url = inbox
    state.items = {i: T0 + timedelta(seconds=i) for i in range(1, 301)}  # distinct moments
    state.items.update({i: T0 + timedelta(seconds=400) for i in range(301, 2801)})  # 2,500 at once
    state.items.update({i: T0 + timedelta(seconds=500 + i) for i in range(2801, 3001)})
    keys, _ = listed(url, 1000)
    assert sorted(i for i, _ in keys) == list(range(1, 3001))
    assert len(state.requests) <= 4  # ceil(3000 / 1000) + at most one re-anchor


def test_distinct_timestamps_cost_about_one_request_per_page(inbox: tuple[Inbox, str]) -> None:
    state, url = inbox
    state.items = {i: T0 + timedelta(seconds=i) for i in range(1, 5001)}
    keys, _ = listed(url, 1000)
    assert sorted(i for i, _ in keys) == list(range(1, 5001))
    assert len(state.requests) <= 6  # re-anchoring repeats one record per page


def test_a_record_updated_while_a_long_run_is_paged_does_not_push_another_out_of_sight(
    inbox: tuple[Inbox, str],
) -> None:
    state, url = inbox
    state.items = {i: T0 for i in range(1, 1501)}
    later = T0 + timedelta(minutes=1)

    def move(count: int) -> None:
        if count == 2:  # between page 1 and page 2: number 10 is updated, all behind slide back
            state.items[10] = later

    state.between = move
    keys, stats = listed(url, 1000)
    assert sorted({i for i, _ in keys}) == list(range(1, 1501)), "number 1001 slid onto page 1"
    assert (10, later) in keys  # and the moved one is seen with its new time
    assert stats.rewinds == 1
    assert len(state.requests) <= 4


def test_without_moves_nothing_is_read_twice(inbox: tuple[Inbox, str]) -> None:
    state, url = inbox
    state.items = {i: T0 for i in range(1, 2001)}
    keys, stats = listed(url, 500)
    assert len(keys) == len({i for i, _ in keys}) == 2000
    assert stats.rewinds == 0
    assert len(state.requests) == 4
