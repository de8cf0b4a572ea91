"""A lost state is never a fresh install.

The state file records which LAPOR! institution and which agency system it belongs to. Before a
writer uses it, ``check_installation`` makes sure that it is readable (SQLite's quick check), that
it belongs to this configuration, and, when it is blank (deleted, emptied, or new), that the
agency does not already hold complaints linked to LAPOR!: a blank state beside a synced agency
is a lost state, and taking it for a fresh install files every complaint and posts every
follow-up again. The fix is `lapor-connector state rebuild` (``connector.rebuild``).
"""

from __future__ import annotations

from itertools import islice

from connector.adapters import AgencyAdapter
from connector.config import Settings
from connector.errors import ConfigError
from connector.logs import get_logger
from connector.state import StateStore

log = get_logger("installation")

#: Agency pages read to tell a fresh install from a lost state (a linked complaint ends it).
PAGES_CHECKED = 3


class StateLost(ConfigError):
    """The state file is unreadable, belongs elsewhere, or was lost: nothing may write with it."""


def identity_of(settings: Settings) -> dict[str, str]:
    """What a state file belongs to: the LAPOR! institution and the agency system."""
    identity = {"lapor_institution_id": str(settings.lapor.institution_id)}
    if settings.agency is not None:
        identity["agency_base_url"] = str(settings.agency.base_url).rstrip("/")
    return identity


def linked_on_the_agency(agency: AgencyAdapter, pages: int = PAGES_CHECKED) -> str | None:
    """The id of an agency complaint already linked to LAPOR!, if the first pages hold one."""
    for page in islice(agency.complaints(None), pages):
        for complaint in page.items:
            if complaint.lapor is not None:
                return complaint.id
    return None


#: State files this process has quick-checked already (the check reads the whole file).
_CHECKED: set[str] = set()


def check_installation(store: StateStore, settings: Settings, agency: AgencyAdapter) -> None:
    """Refuse a state that is corrupt, foreign, or lost; adopt a blank one for a fresh install.

    Cheap once the state is adopted (a lookup of its identity), so every writer's run does it;
    the quick check of the whole file runs once per process and file.
    """
    path = str(store.path.resolve())
    result = "ok" if path in _CHECKED else store.db.execute("PRAGMA quick_check").fetchone()[0]
    if result == "ok":
        _CHECKED.add(path)
    else:
        raise StateLost(
            [
                f"state.path: {store.path} is corrupt (SQLite quick_check: {str(result)[:80]}); "
                "restore it from a backup, or move it aside and run `lapor-connector state rebuild`"
            ]
        )
    expected, recorded = identity_of(settings), store.identity()
    wrong = [name for name, value in expected.items() if recorded.get(name, value) != value]
    if wrong:
        raise StateLost(
            [
                f"state.path: {store.path} belongs to {name} {recorded[name]}, not {expected[name]}; "
                "give this configuration its own state.path"
                for name in wrong
            ]
        )
    if not recorded and store.is_blank():
        linked = linked_on_the_agency(agency)
        if linked is not None:
            raise StateLost(
                [
                    f"state.path: {store.path} is blank, but the agency already holds complaints "
                    f"linked to LAPOR! (e.g. {linked}): the state was lost, this is not a fresh "
                    "install. Restore it from a backup, or run `lapor-connector state rebuild` to "
                    "recover the links from both sides; syncing now would file everything again"
                ]
            )
    if recorded != {**recorded, **expected}:
        with store.transaction():
            store.set_identity(expected)
        log.info("state_adopted", state=str(store.path), blank=store.is_blank())
