"""Every failure of contract section 6, injected by the real simulator, and the client's reaction."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from connector import errors
from connector import models as m
from connector.clock import FakeClock
from connector.lapor.client import LaporClient, content_fingerprint
from connector.simulators.lapor import SimControl
from tests.conftest import INSTITUTION_ID
from tests.test_lapor_client import BEGINNING, held, new_complaint, valid

DETAIL_ROUTE = "complaint"


@pytest.fixture
def target(client: LaporClient) -> m.ComplaintSummary:
    """A complaint currently disposed to us and open."""
    return held(client)[0]


def test_401_stops_without_a_retry_loop(
    make_client: Callable[..., LaporClient], control: SimControl
) -> None:
    """Wrong credentials give one request and a fatal error that names the settings to fix."""
    client = make_client(api_key_value="not-the-key")
    with pytest.raises(errors.AuthenticationFailed, match=r"lapor\.api_key"):
        client.statuses()
    assert control.requests("statuses") == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("bad_request", errors.RecordRejected),
        ("unauthenticated", errors.AuthenticationFailed),
        ("forbidden", errors.NotDisposed),
        ("not_found", errors.NotFound),
        ("conflict", errors.Conflict),
        ("too_large", errors.RecordRejected),
        ("validation", errors.RecordRejected),
    ],
)
def test_client_errors_are_grouped_and_sent_once(
    client: LaporClient,
    control: SimControl,
    target: m.ComplaintSummary,
    mode: str,
    error: type[Exception],
) -> None:
    """400/401/403/404/409/413/422 map to what the caller does next, with no retry."""
    control.add_fault(DETAIL_ROUTE, mode, count=1)
    before = control.requests(DETAIL_ROUTE)
    with pytest.raises(error):
        client.complaint(target.lapor_id)
    assert control.requests(DETAIL_ROUTE) - before == 1


def test_422_on_a_write_carries_field_errors(
    client: LaporClient, control: SimControl, target: m.ComplaintSummary
) -> None:
    """A 422 on a follow-up is quarantinable: it names the invalid field."""
    control.add_fault("followup_add", "validation", count=1)
    with pytest.raises(errors.RecordRejected) as caught:
        client.add_followup(m.NewFollowUp(complaint_id=target.lapor_id, content="Tindak lanjut"))
    assert "content" in {p.path for p in caught.value.problems}
    assert control.writes("followup_add") == 0


@pytest.mark.parametrize(
    "mode", ["server_error", "bad_gateway", "unavailable", "gateway_timeout", "soft_error"]
)
def test_reads_survive_transient_failures(
    client: LaporClient,
    control: SimControl,
    clock: FakeClock,
    target: m.ComplaintSummary,
    mode: str,
) -> None:
    """500 JSON, 502/504 HTML, 503 empty and soft errors are retried with backoff until the read succeeds."""
    control.add_fault(DETAIL_ROUTE, mode, count=2)
    assert client.complaint(target.lapor_id).lapor_id == target.lapor_id
    assert len(clock.sleeps) == 2


def test_persistent_5xx_gives_up_after_max_attempts(
    make_client: Callable[..., LaporClient], control: SimControl, target: m.ComplaintSummary
) -> None:
    """Retries are bounded."""
    client = make_client(retry={"max_attempts": 3})
    control.add_fault(DETAIL_ROUTE, "bad_gateway", count=10)
    before = control.requests(DETAIL_ROUTE)
    with pytest.raises(errors.ServiceUnavailable, match="502"):
        client.complaint(target.lapor_id)
    assert control.requests(DETAIL_ROUTE) - before == 3


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_obeyed(
    client: LaporClient,
    control: SimControl,
    clock: FakeClock,
    target: m.ComplaintSummary,
    form: str,
) -> None:
    """The client waits exactly what Retry-After says (on the injected clock), then succeeds."""
    value = "9"
    if form == "http-date":
        value = email.utils.format_datetime(clock.now() + timedelta(seconds=9), usegmt=True)
    control.add_fault(DETAIL_ROUTE, "rate_limit", count=1, retry_after=value)
    client.complaint(target.lapor_id)
    assert clock.sleeps == [9.0]


def test_real_rate_limit_answers_429_and_is_survived(
    make_client: Callable[..., LaporClient], clock: FakeClock
) -> None:
    """Against a simulator limited to 5 requests a minute, the client waits and carries on."""
    from connector.simulators.lapor import LaporSimulator
    from tests.conftest import API_KEY, TOKEN, make_settings

    with LaporSimulator(
        api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID, requests_per_minute=5
    ).start() as limited:
        client = LaporClient(make_settings(limited.base_url, retry={"max_attempts": 3}), clock)
        for _ in range(5):
            client.statuses()
        with pytest.raises(errors.RateLimited):
            client.statuses()  # the real window is a minute; retries on the fake clock cannot wait it out
        assert clock.sleeps
        assert all(s > 0 for s in clock.sleeps)
        client.close()


def test_post_5xx_is_ambiguous_and_not_resent(
    client: LaporClient, control: SimControl, target: m.ComplaintSummary
) -> None:
    """A follow-up answered 502 is not re-sent; the error says how to look it up."""
    control.add_fault("followup_add", "bad_gateway", count=1)
    with pytest.raises(errors.AmbiguousOutcome) as caught:
        client.add_followup(m.NewFollowUp(complaint_id=target.lapor_id, content="Sedang diproses."))
    assert control.requests("followup_add") == 1
    assert caught.value.lookup == {
        "complaint_id": target.lapor_id,
        "fingerprint": content_fingerprint("Sedang diproses."),
    }


def test_create_commit_then_drop_is_sent_once_and_found(
    client: LaporClient, control: SimControl, category_id: int
) -> None:
    """The write is applied, the connection dropped: ambiguous, sent once, found by external_ref."""
    control.add_fault("create", "drop_after_commit", count=1)
    with pytest.raises(errors.AmbiguousOutcome) as caught:
        client.create_complaint(new_complaint("CTR-77", category_id=category_id))
    assert caught.value.lookup == {"external_ref": "CTR-77"}
    assert control.requests("create") == 1
    assert control.writes("create") == 1
    found = client.find_created("CTR-77")
    assert found is not None
    assert found.external_ref == "CTR-77"


def test_followup_commit_then_drop_is_sent_once_and_found(
    client: LaporClient, control: SimControl, target: m.ComplaintSummary
) -> None:
    """A dropped follow-up POST is not re-sent, and is found again by its fingerprint."""
    control.add_fault("followup_add", "drop_after_commit", count=1)
    with pytest.raises(errors.AmbiguousOutcome) as caught:
        client.add_followup(
            m.NewFollowUp(complaint_id=target.lapor_id, content="Petugas sudah ke lokasi.")
        )
    assert control.writes("followup_add") == 1
    assert control.requests("followup_add") == 1
    lookup = caught.value.lookup
    assert client.find_followup(int(lookup["complaint_id"]), str(lookup["fingerprint"])) is not None  # type: ignore[call-overload]


def test_slow_read_times_out_and_is_retried(
    make_client: Callable[..., LaporClient], control: SimControl, target: m.ComplaintSummary
) -> None:
    """A response slower than the read timeout is abandoned and the read retried."""
    client = make_client(timeouts={"connect": 1, "read": 0.2})
    control.add_fault(DETAIL_ROUTE, "slow", count=1, delay=0.6)
    assert client.complaint(target.lapor_id).lapor_id == target.lapor_id
    assert control.requests(DETAIL_ROUTE) == 2


def test_slow_create_is_ambiguous_not_resent(
    make_client: Callable[..., LaporClient], control: SimControl, category_id: int
) -> None:
    """A create that timed out is not sent again: the caller must look it up first."""
    client = make_client(timeouts={"connect": 1, "read": 0.2})
    control.add_fault("create", "slow", count=1, delay=0.5)
    with pytest.raises(errors.AmbiguousOutcome):
        client.create_complaint(new_complaint("SLOW-1", category_id=category_id))
    assert control.requests("create") == 1


@pytest.fixture
def category_id(client: LaporClient) -> int:
    return next(c.id for c in client.categories() if c.parent_id is not None)


# --- pagination faults -------------------------------------------------------------------


def inbox_ids(client: LaporClient, page_size: int = 4) -> list[int]:
    return [c.lapor_id for c in valid(client.inbox(BEGINNING, page_size=page_size))]


@pytest.mark.parametrize("mode", ["page_repeat", "empty_page"])
def test_inbox_page_glitches_lose_and_duplicate_nothing(
    client: LaporClient, control: SimControl, mode: str
) -> None:
    """A repeated page or an empty page that points further, mid-listing, neither loops, duplicates nor skips."""
    expected = inbox_ids(client)
    listing = client.inbox(BEGINNING, page_size=4)
    pages = listing.pages()
    got = [c.lapor_id for c in next(pages).records]
    control.add_fault("inbox", mode, count=1)
    got += [c.lapor_id for page in pages for c in page.records]
    assert got == expected
    assert listing.stats.anomalies == 1


def test_inbox_item_moved_while_paging_skips_nothing(
    client: LaporClient, control: SimControl
) -> None:
    """An item updated mid-listing moves to the end; every other item is still seen."""
    expected = set(inbox_ids(client))
    listing = client.inbox(BEGINNING, page_size=4)
    pages = listing.pages()
    first = next(pages)
    control.add_fault("inbox", "item_moved", count=1)
    seen = [c.lapor_id for c in first.records] + [
        c.lapor_id for page in pages for c in page.records
    ]
    assert set(seen) == expected
    moved = first.records[0].lapor_id
    assert seen.count(moved) == 2
    assert len(seen) == len(expected) + 1


@pytest.mark.parametrize("mode", ["page_repeat", "empty_page"])
def test_followup_page_glitches_are_asked_again(
    make_client: Callable[..., LaporClient],
    control: SimControl,
    target: m.ComplaintSummary,
    mode: str,
) -> None:
    """On a plain page-numbered list, a glitched page is fetched again rather than dropped."""
    client = make_client(page_size=10)
    for n in range(25):
        client.add_followup(
            m.NewFollowUp(complaint_id=target.lapor_id, content=f"Tindak lanjut ke-{n}")
        )
    expected = [f.id for f in client.followups(target.lapor_id) if isinstance(f, m.FollowUp)]
    listing = client.followups(target.lapor_id)
    pages = listing.pages()
    got = [f.id for f in next(pages).records]
    control.add_fault("followups", mode, count=1)
    got += [f.id for page in pages for f in page.records]
    assert got == expected
    assert listing.stats.anomalies == 1


@pytest.mark.parametrize(
    ("variant", "fields"),
    [
        ("wrong_type", {"id", "is_secret"}),
        ("missing_field", {"tracking_id", "updated_at"}),
        ("unknown_status", {"status_code"}),
        ("naive_timestamp", {"updated_at"}),
        ("odd_unicode", {"title"}),
    ],
)
def test_malformed_record_is_reported_and_the_page_still_syncs(
    client: LaporClient, control: SimControl, variant: str, fields: set[str]
) -> None:
    """One corrupted record comes back as InvalidRecord with its field path; the others are returned."""
    expected = inbox_ids(client, page_size=50)
    control.add_fault("inbox", "malformed", count=1, variant=variant)
    items = list(client.inbox(BEGINNING, page_size=50))
    invalid = [i for i in items if isinstance(i, m.InvalidRecord)]
    assert len(invalid) == 1
    assert {p.path for p in invalid[0].problems} & fields
    assert len(valid(items)) == len(expected) - 1


def test_malformed_detail_raises_with_field_path(
    client: LaporClient, control: SimControl, target: m.ComplaintSummary
) -> None:
    """A corrupted C2 record raises MalformedRecord naming the field."""
    control.add_fault(DETAIL_ROUTE, "malformed", count=1, variant="naive_timestamp")
    with pytest.raises(errors.MalformedRecord, match="updated_at"):
        client.complaint(target.lapor_id)


def test_paging_stops_at_the_page_cap(make_client: Callable[..., LaporClient]) -> None:
    """A list longer than lapor.max_pages stops with a clear error instead of paging forever."""
    client = make_client(max_pages=2)
    with pytest.raises(errors.ProtocolError, match="max_pages"):
        list(client.inbox(BEGINNING, page_size=2))


def test_inbox_is_lazy(client: LaporClient, control: SimControl) -> None:
    """Records are fetched page by page as they are consumed, not all at once."""
    listing = client.inbox(datetime(2000, 1, 1, tzinfo=timezone.utc), page_size=3)
    iterator = iter(listing)
    next(iterator)
    assert listing.stats.requests == 1
