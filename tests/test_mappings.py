"""Mappings: loading with every problem reported, tree-aware rules, checks against master data, golden files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from connector.errors import ConfigError, MappingError
from connector.mappings import check_mappings, load_mappings
from connector.models import (
    AgencyCategory,
    AgencyStatus,
    AgencyUnit,
    Category,
    Classification,
    ComplaintStatus,
    Institution,
)
from connector.simulators.lapor import seed

SHIPPED = Path("mappings")
GOLDEN = Path("tests/golden/mappings")

AGENCY_CATEGORIES = [
    AgencyCategory(code=c, name=n, parent_code=p)
    for c, n, p in [
        ("PTN", "Pertanahan", None), ("PTN-SRT", "Sertifikat", "PTN"), ("PTN-SKT", "Sengketa dan Konflik", "PTN"),
        ("PTN-UKR", "Pengukuran dan Pemetaan", "PTN"), ("YAN", "Pelayanan", None), ("YAN-PGL", "Pungutan Liar", "YAN"),
        ("YAN-ANT", "Antrian dan Waktu Layanan", "YAN"), ("YAN-SKP", "Sikap Petugas", "YAN"), ("LIN", "Lain-lain", None),
    ]
]  # fmt: skip
AGENCY_STATUSES = [
    AgencyStatus(code=c, name=c.title(), is_terminal=t)
    for c, t in [("baru", False), ("diverifikasi", False), ("diproses", False), ("ditunda", False),
                 ("selesai", True), ("ditolak", True), ("diarsipkan", True), ("dialihkan", True)]
]  # fmt: skip
AGENCY_UNITS = [
    AgencyUnit(code=c, name=c)
    for c in ("KANTAH-BDG", "SEKSI-SP", "SEKSI-HHP", "SEKSI-PMP", "SUBBAG-TU")
]
LAPOR_CATEGORIES = [
    Category(id=c["id"], name=c["name"], parent_id=c["parent_id"] or None)
    for c in seed.categories()
]
LAPOR_INSTITUTIONS = [
    Institution(id=i["id"], name=i["name"], parent_id=i["parent_id"] or None)
    for i in seed.institutions(145)
]
LAPOR_CLASSIFICATIONS = [Classification(**c) for c in seed.CLASSIFICATIONS]


def masters() -> dict[str, list]:  # type: ignore[type-arg]
    return {
        "lapor_categories": LAPOR_CATEGORIES,
        "lapor_institutions": LAPOR_INSTITUTIONS,
        "lapor_classifications": LAPOR_CLASSIFICATIONS,
        "agency_categories": AGENCY_CATEGORIES,
        "agency_statuses": AGENCY_STATUSES,
        "agency_units": AGENCY_UNITS,
    }


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped mapping files."""
    target = tmp_path / "mappings"
    shutil.copytree(SHIPPED, target)
    return target


def test_shipped_mappings_cover_the_demo_systems() -> None:
    """The shipped files pass every check against the simulator's and the demo agency's master data."""
    assert check_mappings(load_mappings(SHIPPED), **masters()) == []


def test_child_inherits_the_parents_rule_unless_it_has_its_own() -> None:
    """437 has no rule and takes 436's; 436 has its own; 521 takes its root's (many-to-one)."""
    m = load_mappings(SHIPPED).with_trees(LAPOR_CATEGORIES, AGENCY_CATEGORIES)
    assert m.category_to_agency(437) == "PTN-SRT"
    assert m.category_to_agency(436) == "PTN-SRT"
    assert m.category_to_agency(521) == m.category_to_agency(631) == "LIN"


def test_unmapped_value_raises_with_file_key_and_fix(copy: Path) -> None:
    """Without a rule or fallback, a value raises MappingError naming value, record, file and fix."""
    text = (
        (copy / "categories.yaml")
        .read_text()
        .replace("    30: LIN              # Infrastruktur\n", "")
    )
    (copy / "categories.yaml").write_text(text)
    m = load_mappings(copy).with_trees(LAPOR_CATEGORIES, AGENCY_CATEGORIES)
    with pytest.raises(
        MappingError,
        match=r"unknown LAPOR! category 631 \(complaint 5010653\); add it .*categories.yaml under inbound.rules, or set inbound.fallback",
    ):
        m.category_to_agency(631, record="complaint 5010653")


def test_fallback_only_when_configured(copy: Path) -> None:
    """An explicit fallback catches what no rule covers."""
    text = (
        (copy / "categories.yaml")
        .read_text()
        .replace("    30: LIN              # Infrastruktur\n", "")
    )
    (copy / "categories.yaml").write_text(
        text.replace("  fallback: null\noutbound", "  fallback: LIN\noutbound")
    )
    m = load_mappings(copy).with_trees(LAPOR_CATEGORIES, AGENCY_CATEGORIES)
    assert m.category_to_agency(631) == "LIN"


def test_every_file_problem_is_reported_at_once(copy: Path) -> None:
    """Unknown keys, wrong types, a missing file and broken YAML all come back together."""
    (copy / "units.yaml").unlink()
    (copy / "statuses.yaml").write_text(
        (copy / "statuses.yaml").read_text().replace("diproses: followup", "diproses: escalate")
    )
    (copy / "classifications.yaml").write_text("default_channel: [\n")
    (copy / "categories.yaml").write_text((copy / "categories.yaml").read_text() + "colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        load_mappings(copy)
    problems = caught.value.problems
    assert (
        "units.yaml: missing; copy it from the project's mappings/ folder and adapt it" in problems
    )
    assert any(
        p.startswith("statuses.yaml: outbound.diproses: Input should be 'none'") for p in problems
    )
    assert any(p.startswith("classifications.yaml: not valid YAML") for p in problems)
    assert "categories.yaml: colour: unknown key; remove it or check its spelling" in problems


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "    436: PTN-SRT ",
            "    436: PTN-XXX ",
            "categories.yaml: inbound.rules.436: 'PTN-XXX' is not an agency category",
        ),
        (
            "  rejected: ditolak",
            "  rejected: diproses",
            "statuses.yaml: inbound.rejected: a closed LAPOR! complaint maps to 'diproses'",
        ),
        ("  dialihkan: reject      #", "  #", "statuses.yaml: outbound.dialihkan: missing"),
        ("  SUBBAG-TU: 145\n", "", "units.yaml: outbound.SUBBAG-TU: missing"),
        (
            "    LIN: 960\n",
            "",
            "categories.yaml: outbound: agency category LIN (Lain-lain) is not covered",
        ),
        (
            "    10: PTN ",
            "    11111: PTN ",
            "categories.yaml: inbound.rules.11111: no such LAPOR! category",
        ),
    ],
    ids=[
        "bad-target",
        "terminal-to-open",
        "missing-outbound-status",
        "missing-unit",
        "uncovered-agency-category",
        "unknown-source",
    ],
)
def test_check_finds_each_kind_of_gap(copy: Path, old: str, new: str, problem: str) -> None:
    """check_mappings names the file, the key and what is wrong."""
    for name in ("categories.yaml", "statuses.yaml", "units.yaml"):
        text = (copy / name).read_text()
        if old in text:
            (copy / name).write_text(text.replace(old, new))
    problems = check_mappings(load_mappings(copy), **masters())
    assert any(p.startswith(problem) for p in problems), problems


def test_statuses_never_move_backwards() -> None:
    """Ranks order the lifecycle on both sides."""
    m = load_mappings(SHIPPED)
    assert m.is_backwards_agency("diproses", "baru")
    assert not m.is_backwards_agency("ditunda", "diproses")
    assert not m.is_backwards_agency(None, "baru")
    assert m.is_backwards_lapor(ComplaintStatus.IN_PROCESS, ComplaintStatus.VERIFIED)
    assert not m.is_backwards_lapor(ComplaintStatus.VERIFIED, ComplaintStatus.DONE)


def test_units_channels_and_report_types() -> None:
    """Dispositions route to units and back; channels and report types come from the files."""
    m = load_mappings(SHIPPED).with_trees(LAPOR_CATEGORIES, AGENCY_CATEGORIES)
    assert m.unit_for_disposition(145) == "KANTAH-BDG"
    assert m.unit_for_disposition(146) == "KANTAH-BDG"  # the default unit
    assert m.disposition_for_unit("SEKSI-SP") == 145
    with pytest.raises(MappingError, match=r"units\.yaml under outbound"):
        m.disposition_for_unit("GUDANG")
    assert (m.channel_for("whatsapp"), m.channel_for("email")) == (26, 13)
    assert m.classification_for("YAN-PGL") == 2


def test_version_changes_with_the_files(copy: Path) -> None:
    """The mapping version is a hash of the files."""
    before = load_mappings(copy).version
    (copy / "units.yaml").write_text((copy / "units.yaml").read_text() + "\n# comment\n")
    assert load_mappings(copy).version != before


def _translations() -> dict[str, dict[str, object]]:
    m = load_mappings(SHIPPED).with_trees(LAPOR_CATEGORIES, AGENCY_CATEGORIES)
    return {
        "inbound": {
            "categories": {str(c.id): m.category_to_agency(c.id) for c in LAPOR_CATEGORIES},
            "statuses": {s.value: m.status_to_agency(s) for s in ComplaintStatus},
            "units": {str(i.id): m.unit_for_disposition(i.id) for i in LAPOR_INSTITUTIONS},
        },
        "outbound": {
            "categories": {c.code: m.category_to_lapor(c.code) for c in AGENCY_CATEGORIES},
            "statuses": {s.code: m.action_for_agency_status(s.code) for s in AGENCY_STATUSES},
            "units": {u.code: m.disposition_for_unit(u.code) for u in AGENCY_UNITS},
            "report_types": {c.code: m.classification_for(c.code) for c in AGENCY_CATEGORIES},
        },
    }


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_golden_translations(direction: str) -> None:
    """Every value of both demo systems translates as pinned (UPDATE_GOLDEN=1 rewrites the files)."""
    actual = _translations()[direction]
    path = GOLDEN / f"{direction}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert json.loads(path.read_text()) == actual


@pytest.mark.parametrize("name", ["categories", "statuses", "classifications", "units", "calendar"])
def test_shipped_files_fit_the_json_schema(name: str) -> None:
    """The JSON Schema editors use accepts the shipped files, and rejects a misspelt key."""
    import jsonschema
    import yaml

    schema = json.loads((SHIPPED / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{name}"})
    document = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text())
    document = json.loads(json.dumps(document))  # YAML int keys become strings, as editors see them
    assert list(validator.iter_errors(document)) == []
    assert list(validator.iter_errors({**document, "colour": "blue"}))
