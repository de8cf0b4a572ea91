"""The demo: the connector's daemon between the bundled LAPOR! simulator and demo agency system.

Both systems run on loopback with their own data (the agency on its own SQLite file), the
connector keeps its state in ``.demo/state.sqlite``, and the daemon runs its flows through
several cycles while a citizen replies, the national admin disposes and re-disposes, agency
officers write follow-ups, and the LAPOR! clock moves on by working days. A dropped connection
after a committed follow-up and a malformed record are injected on the way, to show that
nothing is duplicated and nothing is lost. It ends with a summary and the audit log check.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
import yaml
from rich.console import Console
from rich.table import Table

from connector.audit import AuditLog
from connector.clock import SystemClock
from connector.config import Settings, load_settings
from connector.daemon import Daemon
from connector.defaults import bundled
from connector.flows import run_flow
from connector.logs import configure
from connector.reconcile import reconcile_all
from connector.reconcile_fix import repair_all
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.agency.store import SURAT_PDF
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.seed import FOTO_JPG
from connector.state import StateStore
from connector.sync import open_sync

MAPPINGS = bundled("mappings")  # the default mappings, in a checkout or an installed wheel
AGENCY_TOKEN = "demo-agency-token"  # noqa: S105 (the demo system's own token)


def _config(state_dir: Path, lapor: LaporSimulator, agency: AgencySystem) -> Path:
    """A config.yaml for the demo, with the demo systems' credentials in secret files."""
    secrets = state_dir / "secrets"
    secrets.mkdir(mode=0o700)
    for name, value in (
        ("lapor_api_key", lapor.api_key),
        ("lapor_token", lapor.token),
        ("agency_token", agency.token),
    ):
        (secrets / name).write_text(value)
        (secrets / name).chmod(0o600)
    config = {
        "lapor": {
            "base_url": lapor.base_url,
            "institution_id": lapor.institution_id,
            "api_key": f"${{file:{secrets / 'lapor_api_key'}}}",
            "token": f"${{file:{secrets / 'lapor_token'}}}",
            "requests_per_minute": 0,
            "intake_user_id": 1,
        },
        "agency": {"base_url": agency.base_url, "token": f"${{file:{secrets / 'agency_token'}}}"},
        "state": {"path": str(state_dir / "state.sqlite")},
        "mappings": {"path": str(MAPPINGS)},
        "outbox": {
            "first_delay_seconds": 0
        },  # the demo lives seconds: look interrupted writes up on the next cycle
        "logging": {"level": "ERROR", "format": "console"},
    }
    path = state_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


#: LAPOR!'s clock when the demo starts: its complaints were filed over the two months before, and
#: the working days it moves on cross the Christmas holiday and cuti bersama of 2026.
DEMO_START = datetime(2026, 12, 21, 9, 0, tzinfo=timezone(timedelta(hours=7)))


def run_demo(*, complaints: int, seed: int, state_dir: Path, console: Console) -> None:
    """Start both systems, run the daemon through three cycles with activity between them, summarise."""
    configure("ERROR", "console")
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    with (
        LaporSimulator(
            seed=seed, complaints=complaints, requests_per_minute=0, start_time=DEMO_START
        ).start() as lapor,
        AgencySystem(
            state_dir / "agency-system.sqlite", token=AGENCY_TOKEN, complaints=5, seed=seed
        ).start() as agency,
    ):
        lapor_control, agency_control = SimControl(lapor.root_url), AgencyControl(agency.root_url)
        settings = load_settings(_config(state_dir, lapor, agency), env={})
        console.print(
            f"LAPOR! simulator   {lapor.base_url}  (institution {lapor.institution_id}, {complaints} complaints)"
        )
        console.print(
            f"agency system      {agency.base_url}  (its own SQLite file: {state_dir / 'agency-system.sqlite'})"
        )
        console.print(f"connector state    {settings.state.path}\n")

        def cycle(title: str) -> None:
            Daemon(settings).serve(
                max_runs=3
            )  # one run of each flow: inbound, intake out, follow-ups out
            console.print(f"[bold]cycle: {title}[/bold] done")

        lapor_control.add_fault("inbox", "malformed", count=1, variant="naive_timestamp")
        cycle("first sync (everything disposed to the agency, and internal complaints to file)")

        # By LAPOR! id: the agency numbers its complaints in the order the creates landed,
        # and they are sent side by side.
        linked = sorted(
            (c for c in agency_control.complaints() if c["lapor"] and c["source"] == "lapor"),
            key=lambda c: c["lapor"]["id"],
        )
        lapor_control.advance_seconds(120)
        held = lapor.state.complaints

        def status_on_lapor(c: dict[str, Any]) -> str:
            return str(held[c["lapor"]["id"]]["status"])

        open_ones = [c for c in linked if c["status"] in ("diverifikasi", "diproses")
                     and status_on_lapor(c) in ("verified", "in_process")]  # fmt: skip
        # The officers follow up complaints still waiting for their first follow-up (LAPOR!
        # will not close those on its own before the next cycle); the citizen writes on others.
        waiting = [c for c in open_ones if status_on_lapor(c) == "verified"]
        others = [c for c in open_ones if c not in waiting[:2]]
        open_ones = waiting[:2] + others
        for complaint in others[:2]:
            lapor_control.reply(
                complaint["lapor"]["id"], "Mohon kabar perkembangannya, terima kasih."
            )
        fresh = lapor_control.submit(title="Pungutan liar saat balik nama sertifikat",
                                     content="Petugas meminta biaya tambahan di luar tarif PNBP.", category_id=740,
                                     files=[("foto.jpg", FOTO_JPG, "image/jpeg")])  # fmt: skip
        lapor_control.dispose(fresh, lapor.institution_id)
        if len(open_ones) > 0:
            agency_control.add_staff_followup(
                open_ones[0]["id"],
                "Tim sudah meninjau lokasi dan memeriksa berkas.",
                status_after="diproses",
                files=[("surat-balasan.pdf", SURAT_PDF, "application/pdf")],
            )
        if len(open_ones) > 1:
            agency_control.add_staff_followup(
                open_ones[1]["id"],
                "Menunggu fotokopi sertifikat dari pelapor.",
                status_after="ditunda",
            )
        agency_control.add_internal_complaint(title="Antrian loket pengukuran sangat panjang", content="Datang pukul 7, dilayani pukul 13.",
                                              channel="counter", category_code="YAN-ANT", report_to_lapor=True)  # fmt: skip
        lapor_control.add_fault("followup_add", "drop_after_commit", count=1)
        console.print(
            "  citizen replied twice, the admin disposed a new complaint, officers wrote two follow-ups,"
        )
        console.print(
            "  a new counter complaint arrived, and LAPOR! will drop the answer to one follow-up"
        )
        cycle("second sync")

        lapor_control.advance_workdays(11)
        if len(open_ones) > 4:
            lapor_control.dispose(
                open_ones[4]["lapor"]["id"], 146
            )  # one the citizen did not write on
        console.print(
            "  LAPOR!'s clock moved 11 working days (auto-closures), and the admin re-disposed one complaint"
        )
        cycle("third sync (the interrupted follow-up is found, not posted twice)")

        _reconcile_step(console, settings, agency_control)
        _summary(console, settings.state.path, lapor, agency_control)
        _attachments(console, fresh, lapor, agency, agency_control)
        _sla(console, settings)
        console.print(
            f"\nthe audit log: lapor-connector log --config {state_dir / 'config.yaml'}   (and: log verify, log timeline <tracking id>, status)"
        )


def _sla(console: Console, settings: Settings) -> None:
    """The SLA recap the agency reports, and what is most urgent (``lapor-connector sla``)."""
    from connector.cli.sla import print_summary
    from connector.mappings import load_mappings
    from connector.sla import open_rows, summary

    calendar = load_mappings(settings.mappings.path).calendar
    with StateStore(settings.state.path, SystemClock()) as store:
        now = store.clock.now()
        rows = open_rows(store, calendar, now, settings.sla.at_risk_days)
        recap = summary(store, calendar, now, settings.sla.at_risk_days)
    console.print()
    print_summary(recap, "table", console)
    states = Counter(r.state for r in rows)
    console.print(
        f"SLA now: {len(rows)} open, {states['overdue']} overdue, {states['at_risk']} at risk, "
        f"{states['on_time']} on time (working days, national holidays and cuti bersama; "
        "lapor-connector sla lists them by due date)"
    )


def _attachments(
    console: Console, photo_on: int, lapor: LaporSimulator, agency: AgencySystem,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """One line each: the citizen's photo as the agency system serves it, the agency's PDF as
    LAPOR! holds it (compared byte for byte with what was attached)."""
    complaint = next(
        (c for c in agency_control.complaints() if (c["lapor"] or {}).get("id") == photo_on), None
    )
    photo = next(
        (a for a in (complaint or {}).get("attachments", []) if a["file_name"] == "foto.jpg"), None
    )
    served = b""
    if photo is not None:
        session = requests.Session()
        session.trust_env = False
        served = session.get(
            photo["url"], headers={"Authorization": f"Bearer {agency.token}"}, timeout=10
        ).content
    console.print(
        f"citizen's photo foto.jpg downloadable from the agency system: "
        f"{'yes, ' + photo['url'] if photo and served == FOTO_JPG else 'NO'}"
    )
    held = [
        lapor.state.uploads[i]
        for items in lapor.state.followups.values()
        for f in items
        for i in f.get("attachments", [])
        if f["author_type"] == "institution"
    ]
    pdf = any(u["file_name"] == "surat-balasan.pdf" and u["data"] == SURAT_PDF for u in held)
    console.print(f"agency follow-up PDF surat-balasan.pdf on LAPOR!: {'yes, with the file' if pdf else 'NO'}")  # fmt: skip


def _reconcile_step(console: Console, settings: Settings, agency_control: AgencyControl) -> None:
    """One drift made on purpose (an officer reopens a complaint LAPOR! closed), found by
    reconcile, repaired by reconcile --fix, and gone when reconcile runs again."""
    closed = next(
        (
            c
            for c in agency_control.complaints()
            if c["source"] == "lapor" and c["status"] == "selesai"
        ),
        None,
    )
    if closed is None:
        return
    agency_control.set_status(closed["id"], "diproses")
    with open_sync(settings, SystemClock(), actor="operator:demo") as sync:
        run_flow(sync, "intake_out")  # the flows read the change (and leave it: nothing to send)
        found = reconcile_all(sync).findings
        for finding in found:
            console.print(f"  reconcile: {finding.kind} {finding.tracking_id} / {finding.agency_id}: "
                          f"{finding.detail}; fix: {finding.fix}", markup=False)  # fmt: skip
        repairs = repair_all(sync, found)
        left = reconcile_all(sync).findings
    console.print(
        f"[bold]reconcile[/bold]: {len(found)} drift(s) found, {repairs.count('fixed')} fixed "
        f"by reconcile --fix, {len(left)} left"
    )


def _summary(
    console: Console, state_path: Path, lapor: LaporSimulator, agency_control: AgencyControl
) -> None:
    with StateStore(state_path, SystemClock()) as store:
        audit = AuditLog(store)
        done = Counter(e.action for e in audit.entries(outcome="ok"))
        quarantined = store.quarantined()
        verified = audit.verify()
    duplicates = sum(
        max(0, [f["content"] for f in lapor.state.followups[c]].count(text) - 1)
        for c in lapor.state.followups for text in {f["content"] for f in lapor.state.followups[c] if f["author_type"] == "institution"}
    )  # fmt: skip
    closed = [
        c
        for c in agency_control.complaints()
        if c["status"] in ("selesai", "diarsipkan", "dialihkan")
    ]
    table = Table(title="What the connector did", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in [
        ("complaints created in the agency system (from LAPOR!)", done["agency_create_complaint"]),
        (
            "complaints filed on LAPOR! (from the agency's own channels)",
            done["lapor_create_complaint"],
        ),
        (
            "LAPOR! ids written back to the agency",
            sum(1 for c in agency_control.complaints() if c["source"] == "internal" and c["lapor"]),
        ),
        ("follow-ups posted to LAPOR!", done["lapor_add_followup"]),
        ("status actions on LAPOR! (postpone, archive, ...)", done["lapor_process"]),
        ("citizen replies and admin notes received", done["agency_add_followup"]),
        ("status updates sent to the agency", done["agency_update_complaint"]),
        ("agency complaints now closed, archived or re-disposed", len(closed)),
        ("duplicate follow-ups on LAPOR!", duplicates),
        ("records quarantined", len(quarantined)),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    for entry in quarantined:
        console.print(
            f"  quarantined: {entry.source} record {entry.record_id}: {'; '.join(entry.problems)}",
            style="yellow",
            markup=False,
        )
    console.print(
        f"audit log: {verified.checked} entries, chain {'intact' if verified.ok else 'BROKEN at ' + str(verified.first_bad_id)}"
    )
