"""The LAPOR! simulator itself, over raw HTTP: strict where the contract is strict."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import pytest
import requests

from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.workdays import WIB, add_workdays, is_workday
from tests.conftest import API_KEY, AUTH, INSTITUTION_ID, TOKEN

DMY = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}")


def get(
    http: requests.Session,
    sim: LaporSimulator,
    path: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> requests.Response:
    return http.get(
        sim.base_url + path, headers=AUTH if headers is None else headers, params=params, timeout=5
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (AUTH, 200),
        ({"auth": API_KEY, "token": TOKEN}, 200),
        ({"Authorization": f"Bearer {API_KEY}"}, 401),
        ({"Authorization": f"Bearer {API_KEY}", "token": TOKEN.strip("{}")}, 401),
        ({"Authorization": "Bearer wrong", "token": TOKEN}, 401),
        ({}, 401),
    ],
    ids=["bearer", "legacy-auth-header", "no-token", "unbraced-token", "wrong-key", "nothing"],
)
def test_both_credentials_are_required(
    http: requests.Session, sim: LaporSimulator, headers: dict[str, str], status: int
) -> None:
    """The key (Bearer or legacy auth header) and the braced GUID token are both checked."""
    response = get(http, sim, "/masters/statuses", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert response.json()["status"] is False


def test_paging_follows_laravel_shape(http: requests.Session, sim: LaporSimulator) -> None:
    """Lists carry data, current_page, per_page, total and an absolute next_page_url."""
    results = get(http, sim, "/masters/categories", page_size=5).json()["results"]
    assert (results["current_page"], results["per_page"], len(results["data"])) == (1, 5, 5)
    assert results["next_page_url"].startswith(sim.root_url)
    assert "page=2" in results["next_page_url"]
    last = http.get(
        results["next_page_url"].replace("page=2", f"page={-(-results['total'] // 5)}"),
        headers=AUTH,
        timeout=5,
    )
    assert last.json()["results"]["next_page_url"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "1001"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"updated_since": "2026-11-01T00:00:00"}, "updated_since"),
        ({}, "updated_since"),
    ],
    ids=["page-size-over-1000", "page-zero", "naive-since", "missing-since"],
)
def test_strict_list_parameters(
    http: requests.Session, sim: LaporSimulator, params: dict[str, str], field: str
) -> None:
    """Bad paging or a naive updated_since is a 422 naming the field."""
    response = get(
        http,
        sim,
        "/complaints/inbox",
        **(
            {"updated_since": "2026-01-01T00:00:00+07:00"} | params
            if field != "updated_since"
            else params
        ),
    )
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_timestamp_formats(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """Complaints use ISO with offset; logs and follow-ups use d-m-Y H:i:s; data is a JSON string."""
    complaint_id = control.submit(title="Uji", content="Uji format")
    control.dispose(complaint_id, INSTITUTION_ID)
    control.reply(complaint_id, "balasan")
    results = get(http, sim, f"/complaints/{complaint_id}/complaint").json()["results"]
    assert results["data"]["updated_at"].endswith("+07:00")
    log = results["data_logs"][0]
    assert DMY.fullmatch(log["date"])
    assert isinstance(log["data"], str)
    assert "status_new" in json.loads(log["data"])
    followup = get(http, sim, f"/complaints/{complaint_id}/followups").json()["results"]["data"][0]
    assert DMY.fullmatch(followup["created_at"])
    assert followup["author_type"] == "reporter"


def test_legacy_topics_is_a_bare_array_of_strings(
    http: requests.Session, sim: LaporSimulator
) -> None:
    """gettopics lives outside the v3 path, takes KEYTOKEN, and answers a bare array of strings."""
    url = sim.root_url + "/api/services/f01/gettopics"
    assert http.post(url, headers=AUTH, data={"KEYTOKEN": "wrong"}, timeout=5).status_code == 401
    topics = http.post(url, headers=AUTH, data={"KEYTOKEN": API_KEY}, timeout=5).json()
    assert isinstance(topics, list)
    assert all(isinstance(t["id"], str) and isinstance(t["parent"], str) for t in topics)


def create(http: requests.Session, sim: LaporSimulator, **fields: Any) -> requests.Response:
    body = {"title": "Judul", "content": "Isi", "channel": 13, "classification_id": 2, "category_id": 436, "location_id": 3273,
            "disposition_id": INSTITUTION_ID, "user_id": 1, **fields}  # fmt: skip
    return http.post(sim.base_url + "/complaints/complaint", headers=AUTH, json=body, timeout=5)


def test_create_answers_all_three_shapes(http: requests.Session, sim: LaporSimulator) -> None:
    """C7 answers complaint_id, data.complaint_id and results.complaint at once; status Belum Terverifikasi."""
    body = create(http, sim).json()
    assert (
        body["complaint_id"] == body["data"]["complaint_id"] == body["results"]["complaint"]["id"]
    )
    assert body["results"]["complaint"]["status_name"] == "Belum Terverifikasi"


@pytest.mark.parametrize(
    "attachments", ["[{id}]", "[{id}].", False], ids=["json-string", "stray-dot", "false"]
)
def test_create_accepts_every_attachment_form(
    http: requests.Session, sim: LaporSimulator, attachments: object
) -> None:
    """The attachments string, with an old client's stray dot, or false for none."""
    upload = http.post(
        sim.base_url + "/complaints/complaint/file",
        headers=AUTH,
        files=[("attachments[]", ("a.png", b"png", "image/png"))],
        timeout=5,
    )
    file_id = upload.json()["results"]["images"][0]["id"]
    value = attachments.format(id=file_id) if isinstance(attachments, str) else attachments
    assert create(http, sim, attachments=value).status_code == 201


def test_create_validates_with_indonesian_field_errors(
    http: requests.Session, sim: LaporSimulator
) -> None:
    """Missing title and unknown category come back as 422 with a message per field."""
    response = create(http, sim, title="", category_id=1, user_id=None)
    errors = response.json()["errors"]
    assert response.status_code == 422
    assert {"title", "category_id", "user_id"} <= errors.keys()
    assert "wajib diisi" in errors["title"][0]


def test_upload_rules(http: requests.Session, sim: LaporSimulator) -> None:
    """Images and documents are split; other types are 422, more than 10 files 422, over 10 MB 413."""
    url = sim.base_url + "/complaints/complaint/file"

    def post(files: list[tuple[str, bytes]]) -> requests.Response:
        return http.post(
            url,
            headers=AUTH,
            files=[("attachments[]", (n, d, "application/octet-stream")) for n, d in files],
            timeout=10,
        )

    body = post([("a.jpg", b"1"), ("b.pdf", b"2")]).json()["results"]
    assert (len(body["images"]), len(body["docs"])) == (1, 1)
    assert post([("run.exe", b"x")]).status_code == 422
    assert post([(f"{i}.png", b"x") for i in range(11)]).status_code == 422
    assert post([("big.pdf", b"x" * (10 * 1024 * 1024 + 1))]).status_code == 413


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "body_check"),
    [
        ("bad_gateway", 502, "text/html", lambda b: b.startswith(b"<html>")),
        ("gateway_timeout", 504, "text/html", lambda b: b.startswith(b"<html>")),
        ("unavailable", 503, "text/plain", lambda b: b == b""),
        ("server_error", 500, "application/json", lambda b: json.loads(b)["status"] is False),
        ("soft_error", 200, "application/json", lambda b: json.loads(b)["status"] is False),
    ],
)
def test_server_failures_have_the_real_shapes(
    http: requests.Session,
    sim: LaporSimulator,
    control: SimControl,
    mode: str,
    status: int,
    content_type: str,
    body_check: Any,
) -> None:
    """Gateway errors are HTML or empty, never JSON; a soft error is a 200."""
    control.add_fault("statuses", mode, count=1)
    response = get(http, sim, "/masters/statuses")
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    assert body_check(response.content)


def test_commit_then_drop_applies_the_write_and_closes(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """The complaint is created, then the connection closes with no answer."""
    control.add_fault("create", "drop_after_commit", count=1)
    before = len(sim.state.complaints)
    with pytest.raises(requests.ConnectionError):
        create(http, sim, external_ref="DROP-1")
    assert len(sim.state.complaints) == before + 1
    assert control.writes("create") == 1


def test_rate_limit_answers_429_with_retry_after(http: requests.Session) -> None:
    """Past N requests a minute per token, the answer is 429 with Retry-After in seconds."""
    with LaporSimulator(api_key=API_KEY, token=TOKEN, requests_per_minute=3).start() as limited:
        codes = [
            http.get(limited.base_url + "/masters/statuses", headers=AUTH, timeout=5)
            for _ in range(4)
        ]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert 0 < int(codes[-1].headers["Retry-After"]) <= 60


def test_working_days_skip_weekends_and_holidays() -> None:
    """Christmas 2026 is a Friday: from Thursday 24 December, one working day later is Monday 28."""
    assert not is_workday(date(2026, 12, 25))
    start = datetime(2026, 12, 24, 10, 0, tzinfo=WIB)
    assert add_workdays(start, 1) == datetime(2026, 12, 28, 10, 0, tzinfo=WIB)


def test_auto_close_after_ten_working_days_without_reply(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """A follow-up with no reply closes the complaint (Selesai) after 10 working days, not before."""
    complaint_id = control.submit(title="Uji", content="Uji auto-close")
    control.dispose(complaint_id, INSTITUTION_ID)
    http.post(sim.base_url + "/complaints/followup/add", headers=AUTH, timeout=5,
              json={"complaint_id": complaint_id, "content": "Sudah ditangani", "institution_from_id": INSTITUTION_ID})  # fmt: skip
    control.advance_workdays(9)

    def status():
        return get(http, sim, f"/complaints/{complaint_id}/complaint").json()["results"]["data"][
            "status_code"
        ]

    assert status() == "in_process"
    control.advance_workdays(1)
    assert status() == "done"


def test_reply_keeps_the_complaint_open(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """A reporter's reply after the follow-up stops the auto-close."""
    complaint_id = control.submit(title="Uji", content="Uji balasan")
    control.dispose(complaint_id, INSTITUTION_ID)
    http.post(sim.base_url + "/complaints/followup/add", headers=AUTH, timeout=5,
              json={"complaint_id": complaint_id, "content": "Sedang diproses", "institution_from_id": INSTITUTION_ID})  # fmt: skip
    control.reply(complaint_id, "Belum selesai")
    control.advance_workdays(15)
    assert (
        get(http, sim, f"/complaints/{complaint_id}/complaint").json()["results"]["data"][
            "status_code"
        ]
        == "in_process"
    )


def test_postponed_is_archived_after_ten_working_days(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """A complaint held in Ditunda for 10 working days is archived."""
    complaint_id = control.submit(title="Uji", content="Uji tunda")
    control.dispose(complaint_id, INSTITUTION_ID)
    http.post(
        sim.base_url + f"/complaints/process/{complaint_id}/postpone",
        headers=AUTH,
        json={},
        timeout=5,
    )
    control.advance_workdays(10)
    assert (
        get(http, sim, f"/complaints/{complaint_id}/complaint").json()["results"]["data"][
            "status_code"
        ]
        == "archived"
    )


def test_followup_from_another_institution_is_forbidden(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """institution_from_id must be the caller's own institution."""
    complaint_id = control.submit(title="Uji", content="Uji pengirim")
    control.dispose(complaint_id, INSTITUTION_ID)
    response = http.post(sim.base_url + "/complaints/followup/add", headers=AUTH, timeout=5,
                         json={"complaint_id": complaint_id, "content": "x", "institution_from_id": 2})  # fmt: skip
    assert response.status_code == 403


def test_seed_is_deterministic_and_covers_every_state() -> None:
    """The same seed gives the same data; every lifecycle state occurs."""
    first = LaporSimulator(seed=3, complaints=40)
    second = LaporSimulator(seed=3, complaints=40)
    assert [c["title"] for c in first.state.complaints.values()] == [
        c["title"] for c in second.state.complaints.values()
    ]
    assert {c["status"] for c in first.state.complaints.values()} == {
        "unverified", "postponed", "verified", "in_process", "done", "archived", "rejected"
    }  # fmt: skip
    anonymous = [c for c in first.state.complaints.values() if c["is_anonymous"]]
    assert anonymous
    assert all(c["reporter"] is None for c in anonymous)
    first.stop()
    second.stop()


def post_followup(
    http: requests.Session, sim: LaporSimulator, complaint_id: int, content: str
) -> int:
    response = http.post(sim.base_url + "/complaints/followup/add", headers=AUTH, timeout=5,
                         json={"complaint_id": complaint_id, "content": content})  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["results"]["data"]["id"])


def held_open(sim: LaporSimulator) -> list[int]:
    """Our complaints a follow-up may still be added to, by id."""
    return sorted(
        c["id"]
        for c in sim.state.complaints.values()
        if c["disposition_id"] == INSTITUTION_ID and c["status"] in ("verified", "in_process")
    )


def test_new_ids_never_reuse_seeded_ones_in_a_large_world(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """With 20,000 complaints (seeded follow-ups past 890000), new follow-ups, replies and notes,
    complaints and tracking ids are all new."""
    control.reset(complaints=20_000)
    seeded = [f["id"] for items in sim.state.followups.values() for f in items]
    assert max(seeded) > 890_000  # the world is large enough for the old numbering to collide
    targets = held_open(sim)[:20]
    added = [post_followup(http, sim, cid, f"Tindak lanjut {cid}") for cid in targets]
    added += [control.reply(cid, "Balasan warga") for cid in targets[:10]]
    added += [control.note(cid, "Catatan admin") for cid in targets[10:]]
    assert min(added) > max(seeded)
    every = [f["id"] for items in sim.state.followups.values() for f in items]
    assert len(every) == len(set(every)) == len(seeded) + 40
    assert [f["id"] for f in control.followups(targets[0])][-2:] == [added[0], added[20]]
    created = create(http, sim, external_ref="BESAR-1").json()["results"]["complaint"]
    submitted = control.submit(title="Warga", content="Isi")
    complaints = sim.state.complaints.values()
    assert len({c["id"] for c in complaints}) == len({c["tracking_id"] for c in complaints})
    assert len(sim.state.complaints) == 20_002
    assert created["tracking_id"] == "1936400"
    assert submitted == created["id"] + 1 == 5_010_600 + 20_001


def test_small_worlds_keep_their_ids(http: requests.Session, sim: LaporSimulator) -> None:
    """A seeded world of 30 gives its first new follow-up id 890001, as it always did."""
    assert post_followup(http, sim, held_open(sim)[0], "Pertama") == 890_001


def inbox_ids(http: requests.Session, sim: LaporSimulator, since: str, size: int) -> list[int]:
    ids: list[int] = []
    page = 1
    while True:
        results = get(http, sim, "/complaints/inbox", updated_since=since, page=page,
                      page_size=size).json()["results"]  # fmt: skip
        ids += [item["id"] for item in results["data"]]
        if results["next_page_url"] is None:
            return ids
        page += 1


def test_touch_updates_many_complaints_at_one_new_moment(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """admin/touch gives the named complaints the same updated_at, one second after the clock."""
    before = control.now()
    ids = held_open(sim)[:3]
    result = control.touch(ids=ids)
    at = datetime.fromisoformat(result["at"])
    assert result["touched"] == 3
    assert (at - before).total_seconds() == 1
    listed = get(http, sim, "/complaints/inbox", updated_since=result["at"]).json()["results"]
    assert [item["id"] for item in listed["data"]] == ids
    assert {item["updated_at"] for item in listed["data"]} == {result["at"]}
    assert {item["status_code"] for item in listed["data"]} <= {"verified", "in_process"}


def test_touch_by_count_picks_our_first_complaints_by_id(
    sim: LaporSimulator, control: SimControl
) -> None:
    """count (with an optional status) takes the first complaints disposed to us, by id."""
    ours = sorted(
        c["id"] for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID
    )
    at = control.touch(count=4)["at"]
    assert [i for i in ours if sim.state.complaints[i]["updated_at"].isoformat() == at] == ours[:4]
    verified = [i for i in ours if sim.state.complaints[i]["status"] == "verified"]
    assert control.touch(count=2, status="verified")["touched"] == 2
    later = max(c["updated_at"] for c in sim.state.complaints.values())
    assert [i for i in ours if sim.state.complaints[i]["updated_at"] == later] == verified[:2]


def test_touch_can_close_them_as_auto_close_does(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """close moves the open ones to done with a status log and an auto_close history entry;
    terminal ones keep their status but are touched too."""
    done = next(
        c["id"]
        for c in sim.state.complaints.values()
        if c["disposition_id"] == INSTITUTION_ID and c["status"] == "archived"
    )
    open_id = held_open(sim)[0]
    result = control.touch(ids=[open_id, done], close=True)
    assert result["touched"] == 2
    detail = get(http, sim, f"/complaints/{open_id}/complaint").json()["results"]
    assert detail["data"]["status_code"] == "done"
    assert detail["data"]["updated_at"] == result["at"]
    assert detail["data"]["status_logs"][-1]["note"].startswith("Laporan ditutup otomatis")
    assert detail["data_logs"][-1]["template_code"] == "auto_close"
    archived = get(http, sim, f"/complaints/{done}/complaint").json()["results"]["data"]
    assert (archived["status_code"], archived["updated_at"]) == ("archived", result["at"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"ids": [1], "count": 1}, 422),
        ({"ids": "5010600"}, 422),
        ({"count": -1}, 422),
        ({"count": 1, "status": "closed"}, 422),
        ({"ids": [5010600], "close": "yes"}, 422),
        ({"ids": [5010600, 1]}, 404),
    ],
    ids=["nothing", "both", "ids-not-a-list", "negative-count", "unknown-status", "close-not-bool",
         "unknown-id"],
)  # fmt: skip
def test_touch_refuses_what_it_cannot_do(
    http: requests.Session, sim: LaporSimulator, body: dict[str, Any], status: int
) -> None:
    """A bad touch body is a 422 naming the field; an unknown id a 404, and nothing changes."""
    before = sim.state.complaints[5010600]["updated_at"]
    response = http.post(sim.root_url + "/_sim/admin/touch", json=body, timeout=5)
    assert response.status_code == status
    assert sim.state.complaints[5010600]["updated_at"] == before


def test_the_inbox_index_agrees_with_a_full_scan(
    http: requests.Session, sim: LaporSimulator, control: SimControl
) -> None:
    """After every kind of change, each page of C1 is what sorting all complaints would give."""
    world = sim.state
    fresh = control.submit(title="Baru", content="Isi")
    control.dispose(fresh, INSTITUTION_ID)
    post_followup(http, sim, held_open(sim)[1], "Tindak lanjut")
    control.reply(held_open(sim)[2], "Balasan")
    http.post(sim.base_url + f"/complaints/process/{held_open(sim)[3]}/reject", headers=AUTH,
              json={"reason": 146}, timeout=5)  # fmt: skip
    create(http, sim, disposition_id=146, external_ref="LAIN-1")
    control.touch(count=5)
    control.submit(title="Belum", content="Belum didisposisi")  # not ours: not listed
    control.advance_workdays(12)  # auto-close and auto-archive move complaints too
    control.add_fault("inbox", "item_moved", count=1)
    since = "2000-01-01T00:00:00+07:00"
    get(http, sim, "/complaints/inbox", updated_since=since, page_size=5)
    get(http, sim, "/complaints/inbox", updated_since=since, page_size=5)  # moves the first
    moments = sorted({c["updated_at"] for c in world.complaints.values()})
    for moment in [None, *moments[::3], moments[-1]]:
        reference = [c["id"] for c in world.inbox(INSTITUTION_ID, moment, None)]
        for offset, size in ((0, 7), (7, 7), (0, 1000), (len(reference), 5)):
            total, rows = world.inbox_page(INSTITUTION_ID, moment, None, offset, size)
            assert total == len(reference)
            assert [c["id"] for c in rows] == reference[offset : offset + size]
    assert inbox_ids(http, sim, since, 4) == [
        c["id"] for c in world.inbox(INSTITUTION_ID, None, None)
    ]
    by_ref = get(http, sim, "/complaints/inbox", external_ref="LAIN-1").json()["results"]
    assert [item["external_ref"] for item in by_ref["data"]] == ["LAIN-1"]
