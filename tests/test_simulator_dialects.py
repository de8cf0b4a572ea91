"""The LAPOR! simulator's dialects, over raw HTTP: each encodes the contract's open points its own way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.dialects import DIALECTS, Dialect, apply

API_KEY = "dialect-api-key"
TOKEN = "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}"
INSTITUTION_ID = 145
AUTH = {"Authorization": f"Bearer {API_KEY}", "token": TOKEN}  # this module's own credentials
SINCE = "2020-01-01T00:00:00+07:00"

DMY = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMERIC = re.compile(r"^\d+$")
BOOLEANS = {
    "bool": (True, False),
    "int01": (1, 0),
    "string01": ("1", "0"),
    "string_tf": ("true", "false"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LaporSimulator]:
    simulator = LaporSimulator(
        seed=5, complaints=20, api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID
    ).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def ctl(server: LaporSimulator) -> Iterator[SimControl]:
    control = SimControl(server.root_url)
    yield control
    control.set_dialect("contract")


def get(http: requests.Session, sim: LaporSimulator, path: str, **params: Any) -> Any:
    response = http.get(sim.base_url + path, headers=AUTH, params=params, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] is True  # the envelope is never re-encoded
    return body


def sample(http: requests.Session, sim: LaporSimulator) -> dict[str, Any]:
    """The inbox, the detail of an anonymous complaint with follow-ups, and those follow-ups."""
    inbox = get(http, sim, "/complaints/inbox", updated_since=SINCE, page_size=100)
    state = sim.state.complaints.values()
    chosen = next(
        c
        for c in state
        if c["is_anonymous"]
        and c["disposition_id"] == INSTITUTION_ID
        and c["status"] != "unverified"
    )
    with_followups = next(
        c
        for c in state
        if sim.state.followups.get(c["id"]) and c["disposition_id"] == INSTITUTION_ID
    )
    return {
        "inbox": inbox,
        "anonymous": get(http, sim, f"/complaints/{chosen['id']}/complaint"),
        "detail": get(http, sim, f"/complaints/{with_followups['id']}/complaint"),
        "followups": get(http, sim, f"/complaints/{with_followups['id']}/followups"),
    }


def check_timestamp(value: Any, style: str) -> None:
    assert isinstance(value, str)
    assert (DMY if style == "dmy" else ISO).match(value), value


def check_number(value: Any, dialect: Dialect) -> None:
    if dialect.numbers == "string":
        assert isinstance(value, str), value
        assert NUMERIC.match(value), value
    else:
        assert isinstance(value, int), value
        assert not isinstance(value, bool), value


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_dialect_keeps_its_promises(
    http: requests.Session, server: LaporSimulator, ctl: SimControl, name: str
) -> None:
    """Inbox, detail and follow-ups come out with every trait the dialect promises."""
    ctl.set_dialect(name)
    assert ctl.stats()["dialect"] == name
    dialect = DIALECTS[name]
    got = sample(http, server)
    dmy_style = {"contract": "dmy", "iso": "iso", "wib": "dmy"}[dialect.timestamps]
    iso_style = "dmy" if dialect.timestamps == "wib" else "iso"
    true, false = BOOLEANS[dialect.booleans]

    inbox = got["inbox"]["results"]
    check_timestamp(inbox["server_time"], iso_style)
    for key in ("current_page", "per_page", "total"):
        check_number(inbox[key], dialect)
    assert inbox["next_page_url"] is None
    assert inbox["data"]
    for item in inbox["data"] + [
        got["detail"]["results"]["data"],
        got["anonymous"]["results"]["data"],
    ]:
        check_number(item["id"], dialect)
        check_number(item["category_id"], dialect)
        if dialect.tracking_id_int:
            assert isinstance(item["tracking_id"], int)
        else:
            assert isinstance(item["tracking_id"], str)
            assert NUMERIC.match(item["tracking_id"])
        check_timestamp(item["created_at"], dmy_style)
        check_timestamp(item["updated_at"], iso_style)
        assert item["is_secret"] in (true, false)
        assert item["is_anonymous"] in (true, false)
        assert ("status_code" in item) is dialect.status_code
        assert isinstance(item["status_name"], str)
        assert ("kanal_name" in item and "_links" in item) is dialect.extras
        if dialect.deadlines == "absent":
            assert "deadlines" not in item
        else:
            deadlines = item["deadlines"]
            assert deadlines["overdue"] in (true, false)
            for key in ("verify_by", "first_followup_by", "auto_close_at"):
                value = deadlines[key]
                if value is None or value == "":
                    assert value == ("" if dialect.blanks == "empty" else None)
                else:
                    assert (DATE if dialect.deadlines == "date" else ISO).match(value), value
        if item["disposition_id"] in (None, ""):
            assert item["disposition_id"] == ("" if dialect.blanks == "empty" else None)

    detail = got["detail"]["results"]
    for log in detail["data_logs"]:
        check_timestamp(log["date"], dmy_style)
        check_number(log["id"], dialect)
        assert isinstance(log["data"], str)
    for status_log in detail["data"]["status_logs"]:
        check_timestamp(status_log["timestamp"], dmy_style)

    reporter = got["anonymous"]["results"]["data"]["reporter"]
    if dialect.reporter == "null":
        assert reporter is None
    else:
        blank = "" if dialect.blanks == "empty" else None
        assert reporter == {"name": blank, "email": blank, "phone": blank}

    followups = got["followups"]["results"]
    assert followups["data"]
    for item in followups["data"]:
        check_number(item["id"], dialect)
        check_timestamp(item["created_at"], dmy_style)
        assert item["is_secret"] in (true, false)
        assert item["author_type"] in ("institution", "reporter", "admin")
        assert ("_links" in item) is dialect.extras
        blank = "" if dialect.blanks == "empty" else None
        assert item["institution_to_name"] == blank


def test_named_dialects_spot_checks(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    """The examples of the brief, literally."""
    ctl.set_dialect("php")
    item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
    assert isinstance(item["id"], str)
    assert item["id"].isdigit()
    assert item["is_secret"] in ("0", "1")

    ctl.set_dialect("wib")
    item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
    assert DMY.match(item["updated_at"])
    assert all(DATE.match(v) for v in item["deadlines"].values() if isinstance(v, str))

    ctl.set_dialect("contract")
    item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
    assert DMY.match(item["created_at"])
    assert item["updated_at"].endswith("+07:00")
    assert isinstance(item["id"], int)
    assert isinstance(item["is_secret"], bool)

    ctl.set_dialect("iso")
    detail = get(http, server, f"/complaints/{item['id']}/complaint")["results"]
    assert detail["data"]["created_at"].endswith("Z")
    assert detail["data"]["updated_at"].endswith("+07:00")


def test_dialects_agree_on_the_moment(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    """Every dialect names the same instants, only written differently."""
    from connector.simulators.lapor.dialects import parse_timestamp

    seen = {}
    for name in ("contract", "iso", "wib", "legacy"):
        ctl.set_dialect(name)
        item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
        seen[name] = (parse_timestamp(item["created_at"]), parse_timestamp(item["updated_at"]))
    assert len(set(seen.values())) == 1


def test_unknown_dialect_is_a_422_listing_the_known_ones(
    http: requests.Session, server: LaporSimulator
) -> None:
    response = http.post(server.root_url + "/_sim/dialect", json={"name": "cobol"}, timeout=5)
    assert response.status_code == 422
    assert all(name in response.json()["message"] for name in DIALECTS)
    assert SimControl(server.root_url).stats()["dialect"] == "contract"


def test_dialect_leaves_errors_control_plane_and_downloads_alone(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    ctl.set_dialect("legacy")
    missing = http.get(server.base_url + "/complaints/1/complaint", headers=AUTH, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["status"] is False
    assert missing.json()["errors"] == {}
    assert isinstance(ctl.complaints()[0]["id"], int)
    payload = {"status": True, "message": "Success", "results": {"data": [{"id": 1, "x": None}]}}
    out = apply(DIALECTS["php"], "categories", payload)
    assert out["results"]["data"][0] == {"id": "1", "x": ""}
    assert payload["results"]["data"][0] == {"id": 1, "x": None}  # never mutated


@pytest.mark.parametrize("name", ["sparse", "legacy", "wib"])
@pytest.mark.parametrize("variant", ["unknown_status", "naive_timestamp", "wrong_type"])
def test_malformed_records_stay_malformed_in_every_dialect(
    http: requests.Session, server: LaporSimulator, ctl: SimControl, name: str, variant: str
) -> None:
    ctl.set_dialect(name)
    ctl.add_fault("inbox", "malformed", count=1, variant=variant)
    item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
    if variant == "unknown_status":
        assert item.get("status_code") == "escalated" or item["status_name"] == "Dieskalasi"
    elif variant == "naive_timestamp":
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", item["updated_at"])
    else:
        assert item["id"] == "abc"


def test_legacy_topics_accept_the_token_as_keytoken(
    http: requests.Session, server: LaporSimulator
) -> None:
    url = server.root_url + "/api/services/f01/gettopics"
    for credential in (API_KEY, TOKEN):
        topics = http.post(url, headers=AUTH, data={"KEYTOKEN": credential}, timeout=5)
        assert topics.status_code == 200
        assert isinstance(topics.json(), list)
        assert all(isinstance(t["id"], str) for t in topics.json())
    assert http.post(url, headers=AUTH, data={"KEYTOKEN": "x"}, timeout=5).status_code == 401


def create(http: requests.Session, sim: LaporSimulator, **fields: Any) -> requests.Response:
    body = {"title": "Judul", "content": "Isi", "channel": 13, "classification_id": 2,
            "category_id": 436, "location_id": 3273, "disposition_id": INSTITUTION_ID,
            "user_id": 1, **fields}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    return http.post(sim.base_url + "/complaints/complaint", headers=AUTH, json=body, timeout=5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"location_id": None}, "location_id wajib diisi dan berupa angka"),
        ({"location_id": "Bandung"}, "location_id wajib diisi dan berupa angka"),
        ({"location_id": 9999}, "Lokasi tidak ditemukan."),
    ],
    ids=["missing", "not-a-number", "unknown"],
)
def test_create_requires_a_known_location(
    http: requests.Session, server: LaporSimulator, fields: dict[str, Any], message: str
) -> None:
    response = create(http, server, **fields)
    assert response.status_code == 422
    assert response.json()["errors"]["location_id"] == [message]


def test_create_validates_date_of_incident_and_keeps_tags(
    http: requests.Session, server: LaporSimulator
) -> None:
    bad = create(http, server, date_of_incident="02-11-2026")
    assert bad.status_code == 422
    assert "date_of_incident" in bad.json()["errors"]
    good = create(
        http, server, location_id="3171", date_of_incident="2026-10-30", tags_raw="pungli,loket"
    )
    assert good.status_code == 201
    stored = server.state.complaints[good.json()["complaint_id"]]
    assert (stored["location_id"], stored["date_of_incident"], stored["tags_raw"]) == (
        3171,
        "2026-10-30",
        "pungli,loket",
    )


def test_citizen_submit_still_creates(server: LaporSimulator, ctl: SimControl) -> None:
    complaint_id = ctl.submit(title="Uji", content="Uji lokasi")
    assert server.state.complaints[complaint_id]["location_id"] == 3273


def test_create_answer_follows_the_dialect_inside_results_only(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    ctl.set_dialect("mysql")
    body = create(http, server).json()
    assert body["status"] is True
    assert isinstance(body["complaint_id"], int)
    assert isinstance(body["results"]["complaint"]["tracking_id"], int)


def test_constructor_and_cli_know_the_dialects() -> None:
    """LaporSimulator(dialect=...) starts in it; the CLI offers exactly the named dialects."""
    import click

    from connector.cli.root import simulate_lapor

    with LaporSimulator(complaints=1, dialect="sparse") as sim:
        assert sim.dialect == "sparse"
    option = next(p for p in simulate_lapor.params if p.name == "dialect")
    assert isinstance(option.type, click.Choice)
    assert sorted(option.type.choices) == sorted(DIALECTS)
    assert option.default == "contract"


def test_counts_dialect_sums_up_what_c3_lists(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    """counts: each inbox item and the detail carry followups_count and last_followup_at (the
    newest follow-up of any author, ISO 8601 +07:00, null when none), as C3 lists them."""
    from connector.simulators.lapor.dialects import parse_timestamp

    ctl.set_dialect("counts")
    fresh = ctl.submit(title="Hitung", content="Isi")
    ctl.dispose(fresh, INSTITUTION_ID)
    items = get(http, server, "/complaints/inbox", updated_since=SINCE, page_size=100)
    assert items["results"]["data"]
    for item in items["results"]["data"]:
        path = f"/complaints/{item['id']}/followups"
        listed = get(http, server, path, page_size=100)["results"]["data"]
        newest = max((parse_timestamp(f["created_at"]) for f in listed), default=None)
        assert item["followups_count"] == len(listed)
        if newest is None:
            assert item["last_followup_at"] is None
        else:
            assert ISO.match(item["last_followup_at"])
            assert item["last_followup_at"].endswith("+07:00")
            assert parse_timestamp(item["last_followup_at"]) == newest
        assert isinstance(item["id"], int)  # otherwise the contract's encoding
    detail = get(http, server, f"/complaints/{fresh}/complaint")["results"]["data"]
    assert (detail["followups_count"], detail["last_followup_at"]) == (0, None)
    ctl.advance_seconds(90)
    ctl.reply(fresh, "Balasan warga")
    detail = get(http, server, f"/complaints/{fresh}/complaint")["results"]["data"]
    assert detail["followups_count"] == 1
    assert detail["last_followup_at"] == ctl.now().isoformat()


def test_only_the_counts_dialect_adds_the_counts(
    http: requests.Session, server: LaporSimulator, ctl: SimControl
) -> None:
    """Every other dialect's inbox items carry neither field."""
    for name in sorted(set(DIALECTS) - {"counts"}):
        ctl.set_dialect(name)
        item = get(http, server, "/complaints/inbox", updated_since=SINCE)["results"]["data"][0]
        assert not {"followups_count", "last_followup_at"} & set(item), name
