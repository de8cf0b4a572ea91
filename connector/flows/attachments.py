"""Attachments in: the files of a LAPOR! complaint and of its replies reach the agency system.

Each LAPOR! file is one outbox write keyed by its file id (``agency.attachment:<file id>``): its
bytes are downloaded (C9, paced like every LAPOR! request) and uploaded to the agency complaint,
or to the agency follow-up a reply became, with that key as the ``Idempotency-Key``. A retry, or
a crash between the download and the upload, therefore never stores a second copy. A file the
agency holds is linked in the state (``attachment_links``), so it is never fetched again.

A file of a type not carried, over ``attachments.max_bytes``, or that LAPOR! cannot serve (404)
is quarantined as ``inbound`` record ``<complaint id>/<file id>``, naming the file by its id (its
name may be personal) with the limit and the fix; the complaint and the rest of the batch go on,
and ``quarantine retry`` replays it (the complaint is read again and the file sent afresh).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connector import errors
from connector import models as m
from connector.sync import Sync

FLOW = "inbound"
PREFIX = "agency.attachment:"


@dataclass(frozen=True)
class FileJob:
    """One LAPOR! file and where it goes in the agency system."""

    lapor_id: int
    tracking_id: str
    agency_id: str
    file: m.Attachment
    #: The reply it came with (LAPOR! follow-up) and the agency follow-up that reply became.
    lapor_followup_id: int | None = None
    agency_followup_id: str | None = None


def record_id(lapor_id: int, file_id: int) -> str:
    """The quarantine record id of a LAPOR! file: ``<complaint id>/<file id>``."""
    return f"{lapor_id}/{file_id}"


def parse_record_id(value: str) -> tuple[int, int] | None:
    """The (complaint id, file id) of a quarantined file's record id, or None if it is not one."""
    head, _, tail = value.partition("/")
    return (int(head), int(tail)) if head.isdigit() and tail.isdigit() else None


def extension(file: m.Attachment) -> str:
    """A LAPOR! file's type: its ``extension``, else its name's suffix (lower case)."""
    if file.extension:
        return file.extension.lower().lstrip(".")
    return file.file_name.rsplit(".", 1)[-1].lower() if "." in file.file_name else ""


def content_type(file_name: str) -> str:
    """The content type a file name suggests (``application/octet-stream`` when unknown)."""
    return mimetypes.guess_type(file_name, strict=False)[0] or "application/octet-stream"


def intent(job: FileJob) -> dict[str, Any]:
    """The outbox write that stores one LAPOR! file in the agency system."""
    return {
        "key": PREFIX + str(job.file.id),
        "flow": FLOW,
        "target": "agency",
        "operation": "agency_add_attachment",
        "subject": f"{job.tracking_id}/file {job.file.id}",
        "payload": {
            "lapor_id": job.lapor_id,
            "file_id": job.file.id,
            "file_name": job.file.file_name,
            "agency_id": job.agency_id,
            "lapor_followup_id": job.lapor_followup_id,
            "agency_followup_id": job.agency_followup_id,
            "_fields": ["attachments"],
        },
        "lookup": {
            "lapor_id": job.lapor_id,
            "tracking_id": job.tracking_id,
            "agency_id": job.agency_id,
        },
    }


def files_of(attachments: Sequence[m.Attachment] | Sequence[dict[str, Any]]) -> list[m.Attachment]:
    """LAPOR! files as kept in an intent's payload (dicts) or read (records)."""
    return [
        a if isinstance(a, m.Attachment) else m.Attachment.model_validate(a) for a in attachments
    ]


def enqueue_allowed(sync: Sync, jobs: Sequence[FileJob]) -> None:
    """Record the writes of the files the limits allow (inside the caller's transaction, with the
    record they belong to: a kill right after cannot lose them; the next run sends them)."""
    for job in jobs:
        if sync.attachments.refusal(extension(job.file), None) is None and not (
            sync.links.attachment_linked(job.file.id)
        ):
            sync.outbox.enqueue(**intent(job))


def transfer(sync: Sync, jobs: Sequence[FileJob]) -> int:
    """Send every file of ``jobs`` the agency does not hold yet; return how many were stored.

    A file with a write already recorded is sent only while that write is unfinished (a done,
    dead or acknowledged write is not repeated: a dead one waits for the operator). A file of
    a type not carried is quarantined without a request.
    """
    intents = []
    for job in jobs:
        if sync.links.attachment_linked(job.file.id):
            continue
        existing = sync.outbox.get(PREFIX + str(job.file.id))
        if existing is not None:
            if existing.state in ("pending", "failed", "in_flight"):
                intents.append(intent(job))
            continue
        refusal = sync.attachments.refusal(extension(job.file), None)
        if refusal is not None:
            quarantine_file(
                sync, job.lapor_id, job.file.id, job.tracking_id,
                errors.RecordNotSendable(f"LAPOR! file {job.file.id} of complaint {job.lapor_id} is not carried",
                                         [errors.FieldProblem(f"attachments[{job.file.id}]", refusal)],
                                         record_id=record_id(job.lapor_id, job.file.id)),
            )  # fmt: skip
            continue
        intents.append(intent(job))
    if sync.dry_run:
        for one in intents:
            sync.write(**one)
        return len(intents)
    outcomes = sync.write_many(intents)
    return sum(1 for o in outcomes if o is not None and o.state == "done")


def quarantine_file(
    sync: Sync, lapor_id: int, file_id: int, tracking_id: str | None, error: errors.ConnectorError
) -> None:
    """Set one LAPOR! file aside with the reason (never its name); the complaint goes on."""
    sync.quarantine(
        FLOW,
        record_id(lapor_id, file_id),
        error,
        {"lapor_id": lapor_id, "file_id": file_id},
        lapor_id=lapor_id,
        **({"tracking_id": tracking_id} if tracking_id else {}),
    )


def refusal_of_download(
    error: errors.ConnectorError, lapor_id: int, file_id: int, max_bytes: int
) -> errors.RecordNotSendable:
    """Why a file's download (C9) or upload failed, as a quarantine reason with the fix."""
    where = f"attachments[{file_id}]"
    if isinstance(error, errors.NotFound):
        problem = (
            "LAPOR! answered 404 for this file (C9); check it on LAPOR!, then run "
            "`lapor-connector quarantine retry`, or `quarantine ack` to do without it"
        )
    elif isinstance(error, errors.RecordRejected):
        detail = "; ".join(str(p) for p in error.problems) or str(error)
        problem = (
            f"the agency system refused the file ({detail}); fix the agency side, then run "
            "`lapor-connector quarantine retry`"
        )
    else:
        problem = (
            f"over attachments.max_bytes ({max_bytes} bytes); raise the limit (LAPOR! takes at "
            "most 10 MB), then run `lapor-connector quarantine retry`, or `quarantine ack`"
        )
    return errors.RecordNotSendable(
        f"LAPOR! file {file_id} of complaint {lapor_id} could not be stored in the agency system",
        [errors.FieldProblem(where, problem)],
        record_id=record_id(lapor_id, file_id),
    )
