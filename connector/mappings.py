"""Mappings between LAPOR! and the agency's own categories, statuses, report types and units.

They live in four YAML files (``mappings/*.yaml``), validated at start-up: every problem is
reported at once with its file and key. Category rules are tree-aware: a rule on a parent covers
its children unless a child has its own. A value without a rule is never silently defaulted: it
raises ``MappingError`` (the record is quarantined with that reason) unless the file configures an
explicit ``fallback``. ``check_mappings`` compares the files with both sides' master data and
lists every gap, so they can be fixed before a complaint ever hits one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from connector.errors import ConfigError, MappingError
from connector.models import (
    AgencyCategory,
    AgencyStatus,
    AgencyUnit,
    Category,
    Classification,
    ComplaintStatus,
    Institution,
)
from connector.workdays import CALENDAR_FILE, WorkCalendar, load_calendar

FILES = ("categories.yaml", "statuses.yaml", "classifications.yaml", "units.yaml")
LaporAction = Literal["none", "followup", "postpone", "archive", "verify", "reject"]
LAPOR_RANK = {
    ComplaintStatus.UNVERIFIED: 0,
    ComplaintStatus.POSTPONED: 1,
    ComplaintStatus.VERIFIED: 2,
    ComplaintStatus.IN_PROCESS: 3,
    ComplaintStatus.DONE: 4,
    ComplaintStatus.ARCHIVED: 4,
    ComplaintStatus.REJECTED: 4,
}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rules(_File):
    rules: dict[int, str] = {}
    fallback: str | None = None


class _OutRules(_File):
    rules: dict[str, int] = {}
    fallback: int | None = None


class _OnLaporChange(_File):
    #: False (the default): a category changed on LAPOR! keeps the agency's unit (its own
    #: routing wins); True: the complaint moves to the unit ``units`` names for the new category.
    move_unit: bool = False
    units: dict[
        str, str
    ] = {}  #: agency category code -> work unit; a parent's rule covers its children


class _Categories(_File):
    inbound: _Rules
    outbound: _OutRules
    on_lapor_change: _OnLaporChange = _OnLaporChange()


class _Statuses(_File):
    inbound: dict[ComplaintStatus, str]
    #: LAPOR! status codes or names outside the known lifecycle -> the lifecycle status they mean.
    lapor_aliases: dict[str, ComplaintStatus] = {}
    redisposed: str | None = None
    outbound: dict[str, LaporAction]
    rank: dict[str, int]


class _Classifications(_File):
    #: LAPOR! report type -> the agency's code for it (sent when LAPOR! changes a complaint's).
    inbound: dict[int, str] = {}
    default: int | None = None
    by_category: dict[str, int] = {}
    channels: dict[str, int] = {}
    default_channel: int


class _Units(_File):
    inbound: dict[int, str] = {}
    default_unit: str | None = None
    outbound: dict[str, int] = {}
    #: agency work unit -> LAPOR! location (the region a complaint filed on LAPOR! is about).
    locations: dict[str, int] = {}
    default_location: int | None = None
    #: agency work unit -> the time zone its working days are counted in (WIB, WITA, WIT).
    time_zones: dict[str, str] = {}
    default_time_zone: str = "WIB"


def _walk(start: Any, parents: Mapping[Any, Any]) -> Iterable[Any]:
    """``start`` and its ancestors, nearest first (stops on a cycle)."""
    seen: set[Any] = set()
    node = start
    while node is not None and node not in seen:
        yield node
        seen.add(node)
        node = parents.get(node)


K = TypeVar("K")
V = TypeVar("V")


def _nearest_rule(
    start: K, parents: Mapping[K, K | None], rules: Mapping[K, V], fallback: V | None
) -> V | None:
    """The rule of ``start`` or of its nearest ancestor that has one, else the fallback."""
    for node in _walk(start, parents):
        if node in rules:
            return rules[node]
    return fallback


def _where(record: str | None) -> str:
    return f" ({record})" if record else ""


class Mappings:
    """The four mapping files, validated; translation in both directions."""

    def __init__(
        self,
        directory: Path,
        version: str,
        categories: _Categories,
        statuses: _Statuses,
        classifications: _Classifications,
        units: _Units,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.directory = directory
        #: A short hash of the files' contents; it goes into every audit entry.
        self.version = version
        self._categories = categories
        self._statuses = statuses
        self._classifications = classifications
        self._units = units
        self._lapor_parents: dict[int, int | None] = {}
        self._agency_parents: dict[str, str | None] = {}
        #: Called with "lapor" or "agency" when a record names a category the trees do not
        #: know (the cached master data may be older than the category); it refreshes the
        #: trees through ``with_trees`` and returns whether anything was fetched.
        self.on_unknown_category: Callable[[str], bool] | None = None
        #: Working days per unit (``calendar.yaml`` and the units' time zones).
        self.calendar = calendar or WorkCalendar()

    def with_trees(self, lapor: Iterable[Category], agency: Iterable[AgencyCategory]) -> Mappings:
        """Give the category trees of both sides, so rules on parents cover their children."""
        self._lapor_parents = {c.id: c.parent_id for c in lapor}
        self._agency_parents = {c.code: c.parent_code for c in agency}
        return self

    def _file(self, name: str) -> str:
        return f"{self.directory / name}"

    # --- categories ----------------------------------------------------------------------

    def category_to_agency(self, lapor_category_id: int, *, record: str | None = None) -> str:
        """The agency category for a LAPOR! category (nearest rule up the tree, else the fallback)."""
        rules = self._categories.inbound
        if lapor_category_id not in self._lapor_parents and self.on_unknown_category is not None:
            self.on_unknown_category("lapor")
        found = _nearest_rule(lapor_category_id, self._lapor_parents, rules.rules, rules.fallback)
        if found is None:
            raise MappingError(
                f"unknown LAPOR! category {lapor_category_id}{_where(record)}; add it (or a parent) to "
                f"{self._file('categories.yaml')} under inbound.rules, or set inbound.fallback"
            )
        return found

    def category_to_lapor(self, agency_code: str, *, record: str | None = None) -> int:
        """The LAPOR! category for an agency category (nearest rule up the tree, else the fallback)."""
        rules = self._categories.outbound
        if agency_code not in self._agency_parents and self.on_unknown_category is not None:
            self.on_unknown_category("agency")
        found = _nearest_rule(agency_code, self._agency_parents, rules.rules, rules.fallback)
        if found is None:
            raise MappingError(
                f"unknown agency category {agency_code!r}{_where(record)}; add it (or a parent) to "
                f"{self._file('categories.yaml')} under outbound.rules, or set outbound.fallback"
            )
        return found

    @property
    def moves_unit_on_lapor_change(self) -> bool:
        """Whether a category changed on LAPOR! moves the complaint to another unit."""
        return self._categories.on_lapor_change.move_unit

    def unit_for_category(self, agency_code: str, *, record: str | None = None) -> str:
        """The work unit a complaint moves to when LAPOR! changes its category to ``agency_code``."""
        found = _nearest_rule(
            agency_code, self._agency_parents, self._categories.on_lapor_change.units, None
        )
        if found is None:
            raise MappingError(
                f"no work unit for agency category {agency_code!r}{_where(record)}, which LAPOR! "
                f"changed it to; add it (or a parent) to {self._file('categories.yaml')} under "
                "on_lapor_change.units, or set on_lapor_change.move_unit: false"
            )
        return found

    def describe_on_lapor_change(self) -> str:
        """What a category change on LAPOR! does to the agency's unit, in one sentence."""
        if self.moves_unit_on_lapor_change:
            return (
                "a category changed on LAPOR! moves the complaint to the unit "
                "categories.yaml: on_lapor_change.units names (move_unit: true)"
            )
        return (
            "a category changed on LAPOR! keeps the agency's unit "
            "(categories.yaml: on_lapor_change.move_unit: false)"
        )

    # --- statuses ------------------------------------------------------------------------

    def status_to_agency(self, status: ComplaintStatus, *, record: str | None = None) -> str:
        """The agency status for a LAPOR! status."""
        try:
            return self._statuses.inbound[status]
        except KeyError:
            where = f" ({record})" if record else ""
            raise MappingError(
                f"no agency status for LAPOR! status {status.value}{where}; add it to "
                f"{self._file('statuses.yaml')} under inbound"
            ) from None

    def action_for_agency_status(self, code: str, *, record: str | None = None) -> LaporAction:
        """What to do on LAPOR! when the agency's complaint reaches status ``code``."""
        try:
            return self._statuses.outbound[code]
        except KeyError:
            where = f" ({record})" if record else ""
            raise MappingError(
                f"no LAPOR! action for agency status {code!r}{where}; add it to "
                f"{self._file('statuses.yaml')} under outbound (none, followup, postpone, archive, verify, reject)"
            ) from None

    @property
    def status_aliases(self) -> dict[str, ComplaintStatus]:
        """LAPOR! status values the connector does not know, as ``lapor_aliases`` reads them."""
        return dict(self._statuses.lapor_aliases)

    def status_when_redisposed(self) -> str | None:
        """The agency status for a complaint LAPOR! moved to another institution (None: keep it)."""
        return self._statuses.redisposed

    def is_backwards_agency(self, old: str | None, new: str) -> bool:
        """True if moving the agency status from ``old`` to ``new`` would go backwards."""
        rank = self._statuses.rank
        return old is not None and old in rank and new in rank and rank[new] < rank[old]

    @staticmethod
    def is_backwards_lapor(old: ComplaintStatus | None, new: ComplaintStatus) -> bool:
        """True if a LAPOR! status change from ``old`` to ``new`` would go backwards."""
        return old is not None and LAPOR_RANK[new] < LAPOR_RANK[old]

    # --- report types and channels -------------------------------------------------------

    def classification_for(self, agency_category: str | None, *, record: str | None = None) -> int:
        """The LAPOR! report type for a complaint the agency creates on LAPOR!."""
        rules = self._classifications
        found = (
            rules.default
            if agency_category is None
            else _nearest_rule(
                agency_category, self._agency_parents, rules.by_category, rules.default
            )
        )
        if found is not None:
            return found
        raise MappingError(
            f"no LAPOR! report type for agency category {agency_category!r}{_where(record)}; add it to "
            f"{self._file('classifications.yaml')} under by_category, or set default"
        )

    def classification_to_agency(self, report_type: int, *, record: str | None = None) -> str:
        """The agency's code for a LAPOR! report type (klasifikasi)."""
        try:
            return self._classifications.inbound[report_type]
        except KeyError:
            raise MappingError(
                f"no agency code for LAPOR! report type {report_type}{_where(record)}; add it to "
                f"{self._file('classifications.yaml')} under inbound"
            ) from None

    def channel_for(self, agency_channel: str) -> int:
        """The LAPOR! channel id for an agency channel (the default channel when unlisted)."""
        return self._classifications.channels.get(
            agency_channel, self._classifications.default_channel
        )

    # --- units and dispositions ----------------------------------------------------------

    def unit_for_disposition(self, institution_id: int | None) -> str | None:
        """The agency work unit for the LAPOR! institution a complaint is disposed to."""
        if institution_id is not None and institution_id in self._units.inbound:
            return self._units.inbound[institution_id]
        return self._units.default_unit

    def disposition_for_unit(self, unit_code: str | None, *, record: str | None = None) -> int:
        """The LAPOR! institution to dispose a complaint of this agency unit to."""
        if unit_code is not None and unit_code in self._units.outbound:
            return self._units.outbound[unit_code]
        where = f" ({record})" if record else ""
        raise MappingError(
            f"no LAPOR! institution for agency unit {unit_code!r}{where}; add it to "
            f"{self._file('units.yaml')} under outbound"
        )

    def location_for_unit(self, unit_code: str | None, *, record: str | None = None) -> int:
        """The LAPOR! location (C7 ``location_id``) for a complaint of this agency unit."""
        units = self._units
        found = units.locations.get(unit_code or "", units.default_location)
        if found is not None:
            return found
        raise MappingError(
            f"no LAPOR! location for agency unit {unit_code!r}{_where(record)}; LAPOR! requires "
            f"one for every complaint filed; add the unit to {self._file('units.yaml')} under "
            "locations, or set default_location"
        )


# --- loading -------------------------------------------------------------------------------

_MODELS: dict[str, type[_File]] = {
    "categories.yaml": _Categories,
    "statuses.yaml": _Statuses,
    "classifications.yaml": _Classifications,
    "units.yaml": _Units,
}


def mappings_problems(directory: str | Path) -> list[str]:
    """Every problem of the mappings folder (none: it loads), each naming its file and key."""
    try:
        load_mappings(directory)
    except ConfigError as error:
        return [f"mappings.path: {directory}: {p}" for p in error.problems]
    return []


def load_mappings(directory: str | Path) -> Mappings:
    """Read and validate the four mapping files; raise ``ConfigError`` listing every problem."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(
            [
                "no such folder; set mappings.path to the folder holding "
                f"{', '.join(FILES)} (copy the project's mappings/ folder and adapt it)"
            ],
            str(folder),
        )
    problems: list[str] = []
    parsed: dict[str, _File] = {}
    digest = hashlib.sha256()
    for name, model in _MODELS.items():
        path = folder / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            problems.append(
                f"{name}: missing; copy it from the project's mappings/ folder and adapt it"
            )
            continue
        digest.update(name.encode() + b"\0" + text.encode("utf-8") + b"\0")
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            problems.append(f"{name}: not valid YAML{line}; fix the syntax there")
            continue
        try:
            parsed[name] = model.model_validate(raw)
        except ValidationError as error:
            for item in error.errors(include_input=False, include_url=False, include_context=False):
                key = ".".join(str(p) for p in item["loc"] if p != "[key]")
                fix = {
                    "missing": "required; add it",
                    "extra_forbidden": "unknown key; remove it or check its spelling",
                }.get(item["type"], item["msg"])
                problems.append(f"{name}: {key}: {fix}")
    calendar: WorkCalendar | None = None
    units = parsed.get("units.yaml")
    if isinstance(units, _Units):
        try:
            calendar = load_calendar(
                folder,
                zones=units.time_zones,
                default_zone=units.default_time_zone,
                units=_unit_codes(units),
            )
        except ConfigError as error:
            problems.extend(error.problems)
        calendar_path = folder / CALENDAR_FILE
        if calendar_path.exists():
            digest.update(CALENDAR_FILE.encode() + b"\0" + calendar_path.read_bytes() + b"\0")
    categories = parsed.get("categories.yaml")
    if (
        isinstance(categories, _Categories)
        and categories.on_lapor_change.move_unit
        and not categories.on_lapor_change.units
    ):
        problems.append(
            "categories.yaml: on_lapor_change.units: required with move_unit: true; give the "
            "work unit of each agency category (a parent's rule covers its children)"
        )
    if problems:
        raise ConfigError(problems, str(folder))
    return Mappings(
        folder,
        digest.hexdigest()[:12],
        parsed["categories.yaml"],  # type: ignore[arg-type]
        parsed["statuses.yaml"],  # type: ignore[arg-type]
        parsed["classifications.yaml"],  # type: ignore[arg-type]
        parsed["units.yaml"],  # type: ignore[arg-type]
        calendar,
    )


def _unit_codes(units: _Units) -> set[str]:
    """Every work unit the units file names."""
    codes = set(units.inbound.values()) | set(units.outbound) | set(units.locations)
    codes |= set(units.time_zones)
    if units.default_unit:
        codes.add(units.default_unit)
    return codes


# --- checking against both sides' master data -----------------------------------------------


def check_mappings(
    mappings: Mappings,
    *,
    lapor_categories: list[Category],
    lapor_institutions: list[Institution],
    lapor_classifications: list[Classification],
    agency_categories: list[AgencyCategory],
    agency_statuses: list[AgencyStatus],
    agency_units: list[AgencyUnit],
) -> list[str]:
    """Every gap between the mapping files and both sides' master data, each with file, key and fix."""
    m = mappings.with_trees(lapor_categories, agency_categories)
    cats, sts, cls, units = m._categories, m._statuses, m._classifications, m._units
    agency_cats = {c.code for c in agency_categories}
    lapor_cats = {c.id for c in lapor_categories}
    agency_status_codes = {s.code: s for s in agency_statuses}
    agency_unit_codes = {u.code for u in agency_units}
    institutions = {i.id for i in lapor_institutions}
    problems: list[str] = []

    for lapor_source, agency_target in cats.inbound.rules.items():
        if lapor_source not in lapor_cats:
            problems.append(
                f"categories.yaml: inbound.rules.{lapor_source}: no such LAPOR! category; remove the rule"
            )
        if agency_target not in agency_cats:
            problems.append(
                f"categories.yaml: inbound.rules.{lapor_source}: {agency_target!r} is not an agency category; use one of {sorted(agency_cats)}"
            )
    if cats.inbound.fallback is not None and cats.inbound.fallback not in agency_cats:
        problems.append(
            f"categories.yaml: inbound.fallback: {cats.inbound.fallback!r} is not an agency category"
        )
    for agency_source, lapor_target in cats.outbound.rules.items():
        if agency_source not in agency_cats:
            problems.append(
                f"categories.yaml: outbound.rules.{agency_source}: no such agency category; remove the rule"
            )
        if lapor_target not in lapor_cats:
            problems.append(
                f"categories.yaml: outbound.rules.{agency_source}: {lapor_target} is not a LAPOR! category"
            )
    for category in lapor_categories:
        try:
            m.category_to_agency(category.id)
        except MappingError:
            problems.append(
                f"categories.yaml: inbound: LAPOR! category {category.id} ({category.name}) is not covered; add a rule for it or a parent, or set inbound.fallback"
            )
    for code, unit in cats.on_lapor_change.units.items():
        if code not in agency_cats:
            problems.append(
                f"categories.yaml: on_lapor_change.units.{code}: no such agency category; remove the rule"
            )
        if unit not in agency_unit_codes:
            problems.append(
                f"categories.yaml: on_lapor_change.units.{code}: {unit!r} is not an agency unit; use one of {sorted(agency_unit_codes)}"
            )
    for agency_category in agency_categories:
        if cats.on_lapor_change.move_unit:
            try:
                m.unit_for_category(agency_category.code)
            except MappingError:
                problems.append(
                    f"categories.yaml: on_lapor_change.units: agency category {agency_category.code} ({agency_category.name}) is not covered; add a rule for it or a parent, or set move_unit: false"
                )
        try:
            m.category_to_lapor(agency_category.code)
        except MappingError:
            problems.append(
                f"categories.yaml: outbound: agency category {agency_category.code} ({agency_category.name}) is not covered; add a rule for it or a parent, or set outbound.fallback"
            )

    for status in ComplaintStatus:
        target = sts.inbound.get(status)
        if target is None:
            problems.append(
                f"statuses.yaml: inbound.{status.value}: missing; map it to an agency status"
            )
        elif target not in agency_status_codes:
            problems.append(
                f"statuses.yaml: inbound.{status.value}: {target!r} is not an agency status; use one of {sorted(agency_status_codes)}"
            )
        elif status.is_terminal and not agency_status_codes[target].is_terminal:
            problems.append(
                f"statuses.yaml: inbound.{status.value}: a closed LAPOR! complaint maps to {target!r}, which is not a terminal agency status"
            )
    for code in agency_status_codes:
        if code not in sts.outbound:
            problems.append(
                f"statuses.yaml: outbound.{code}: missing; give the LAPOR! action (none, followup, postpone, archive, verify, reject)"
            )
        if code not in sts.rank:
            problems.append(f"statuses.yaml: rank.{code}: missing; give its place in the lifecycle")
    if sts.redisposed is not None and sts.redisposed not in agency_status_codes:
        problems.append(f"statuses.yaml: redisposed: {sts.redisposed!r} is not an agency status")
    for code in set(sts.outbound) | set(sts.rank):
        if code not in agency_status_codes:
            problems.append(f"statuses.yaml: {code}: not an agency status; remove it")

    classification_ids = {c.id for c in lapor_classifications}
    for code, report_type in cls.by_category.items():
        if code not in agency_cats:
            problems.append(f"classifications.yaml: by_category.{code}: no such agency category")
        if report_type not in classification_ids:
            problems.append(
                f"classifications.yaml: by_category.{code}: {report_type} is not a LAPOR! report type"
            )
    for report_type in sorted(classification_ids - set(cls.inbound)):
        problems.append(
            f"classifications.yaml: inbound.{report_type}: missing; give the agency's code for this LAPOR! report type"
        )
    for report_type in sorted(set(cls.inbound) - classification_ids):
        problems.append(
            f"classifications.yaml: inbound.{report_type}: not a LAPOR! report type; remove it"
        )
    if cls.default is not None and cls.default not in classification_ids:
        problems.append(f"classifications.yaml: default: {cls.default} is not a LAPOR! report type")

    for institution, unit in units.inbound.items():
        if institution not in institutions:
            problems.append(f"units.yaml: inbound.{institution}: no such LAPOR! institution")
        if unit not in agency_unit_codes:
            problems.append(f"units.yaml: inbound.{institution}: {unit!r} is not an agency unit")
    if units.default_unit is not None and units.default_unit not in agency_unit_codes:
        problems.append(f"units.yaml: default_unit: {units.default_unit!r} is not an agency unit")
    for unit in agency_unit_codes:
        if unit not in units.outbound:
            problems.append(
                f"units.yaml: outbound.{unit}: missing; give the LAPOR! institution its complaints are disposed to"
            )
    for unit, institution in units.outbound.items():
        if institution not in institutions:
            problems.append(
                f"units.yaml: outbound.{unit}: {institution} is not a LAPOR! institution"
            )
    if units.default_location is None:
        for unit in sorted(agency_unit_codes - set(units.locations)):
            problems.append(
                f"units.yaml: locations.{unit}: missing; give the LAPOR! location id its complaints are about (LAPOR! requires one), or set default_location"
            )
    for unit in units.locations:
        if unit not in agency_unit_codes:
            problems.append(f"units.yaml: locations.{unit}: {unit!r} is not an agency unit")
    return problems
