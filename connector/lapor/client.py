"""``LaporClient``: every LAPOR! v3 endpoint, spoken in the canonical model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from connector import models as m
from connector.clock import Clock
from connector.config import LaporSettings
from connector.errors import FieldProblem, MalformedRecord, ProtocolError
from connector.lapor import wire
from connector.lapor.paging import Listing
from connector.lapor.transport import LaporTransport

T = TypeVar("T")

#: Largest attachment the service accepts (10 MB) [INF].
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Most files one upload may carry [INF].
MAX_FILES_PER_UPLOAD = 10


def content_fingerprint(content: str) -> str:
    """A short, stable fingerprint of a follow-up's text, to find it after an ambiguous POST."""
    return hashlib.sha256(content.strip().encode("utf-8")).hexdigest()[:16]


class LaporClient:
    """A client of the LAPOR! v3 API for one institution.

    Reads return canonical records (``connector.models``); paged reads return lazy
    ``Listing`` objects. Writes are sent once: a write whose outcome is unknown raises
    ``AmbiguousOutcome`` carrying the lookup keys (see ``find_created`` and
    ``find_followup``).
    """

    def __init__(
        self, settings: LaporSettings, clock: Clock, *, transport: LaporTransport | None = None
    ) -> None:
        self.settings = settings
        self.institution_id = settings.institution_id
        self.transport = transport or LaporTransport(settings, clock)
        #: LAPOR! status values outside the known lifecycle, as the mappings say (statuses.yaml).
        self.status_aliases: dict[str, m.ComplaintStatus] = {}

    # --- what LAPOR! would refuse, checked before a write is sent ------------------------

    @staticmethod
    def complaint_problems(
        complaint: m.NewComplaint, files: Sequence[tuple[str, int | None]] = ()
    ) -> list[FieldProblem]:
        """Why LAPOR! would refuse this create (C7) and its attachments (C8); [] if it would not."""
        return wire.complaint_problems(complaint) + (
            wire.attachment_problems(files) if files else []
        )

    @staticmethod
    def followup_problems(
        content: str, files: Sequence[tuple[str, int | None]] = ()
    ) -> list[FieldProblem]:
        """Why LAPOR! would refuse a follow-up (C4) with this content and these files
        (name, size or None); [] if it would not."""
        return wire.followup_problems(content) + (wire.attachment_problems(files) if files else [])

    def close(self) -> None:
        """Release the HTTP connections."""
        self.transport.close()

    def __enter__(self) -> LaporClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- master data ---------------------------------------------------------------------

    def _listing(self, path: str, parse: Callable[[object], T], source: str) -> Listing[T]:
        return Listing(
            self.transport,
            path,
            parse,
            source=source,
            page_size=wire.MAX_PAGE_SIZE,
            max_pages=self.settings.max_pages,
        )

    def categories(self) -> list[m.Category]:
        """The category tree, flattened (``parent_id`` None for roots)."""
        return self._listing(wire.CATEGORIES, wire.category, "category").all()

    def institutions(self) -> list[m.Institution]:
        """Institutions a complaint can be disposed to."""
        return self._listing(wire.INSTITUTIONS, wire.institution, "institution").all()

    def templates(self) -> list[m.Template]:
        """Message templates."""
        return self._listing(wire.TEMPLATES, wire.template, "template").all()

    def statuses(self) -> list[m.StatusInfo]:
        """Status codes and their names."""
        body = self.transport.get(wire.STATUSES)
        return [wire.status(item) for item in wire.list_items(body, wire.STATUSES)]

    def classifications(self) -> list[m.Classification]:
        """Report types (klasifikasi)."""
        body = self.transport.get(wire.CLASSIFICATIONS)
        return [wire.classification(item) for item in wire.list_items(body, wire.CLASSIFICATIONS)]

    def topics(self) -> list[m.Topic]:
        """Topics from the legacy ``gettopics`` service (outside the v3 base path)."""
        body = self.transport.post(
            wire.LEGACY_TOPICS,
            operation="list_topics",
            lookup={},
            data=wire.legacy_topics_form(self.transport.api_key),
            root=True,
        )
        return [wire.topic(item) for item in wire.list_items(body, wire.LEGACY_TOPICS)]

    # --- complaints: reads ---------------------------------------------------------------

    def inbox(
        self, updated_since: datetime, *, page_size: int | None = None
    ) -> Listing[m.ComplaintSummary]:
        """C1: complaints disposed to us (now or before), updated at or after ``updated_since``.

        Ordered by ``(updated_at, id)``; after iterating, ``listing.server_time`` is the next
        safe ``updated_since``.
        """
        return Listing(
            self.transport,
            wire.INBOX,
            self._summary,
            source="lapor.inbox",
            params=wire.inbox_params(updated_since),
            page_size=page_size or self.settings.page_size,
            max_pages=self.settings.max_pages,
            key=lambda c: (c.updated_at, c.lapor_id),
            anchor=wire.inbox_params,
        )

    def find_created(self, external_ref: str) -> m.ComplaintSummary | None:
        """C1 by ``external_ref``: the complaint we created for that agency ticket, if any."""
        body = self.transport.get(
            wire.INBOX, {**wire.external_ref_params(external_ref), **wire.page_params(1, 10)}
        )
        for raw in wire.page(body, wire.INBOX, 1).items:
            if not isinstance(raw, dict) or str(raw.get("external_ref") or "") != external_ref:
                continue  # only our own record decides; another one's problems are not ours
            return self._summary(raw)
        return None

    def _summary(self, raw: object) -> m.ComplaintSummary:
        return wire.complaint_summary(raw, self.status_aliases)

    def complaint(self, complaint_id: int) -> m.Complaint:
        """C2: one complaint in full, with its history."""
        body = self.transport.get(wire.complaint_path(complaint_id))
        return wire.complaint_detail(
            wire.results(body, wire.complaint_path(complaint_id)), self.status_aliases
        )

    def followups(self, complaint_id: int) -> Listing[m.FollowUp]:
        """C3: follow-ups and replies of one complaint, oldest first."""
        return Listing(
            self.transport,
            wire.followups_path(complaint_id),
            wire.followup,
            source="lapor.followups",
            page_size=self.settings.page_size,
            max_pages=self.settings.max_pages,
        )

    def find_followup(self, complaint_id: int, fingerprint: str) -> m.FollowUp | None:
        """C3 search: our follow-up on ``complaint_id`` whose content has ``fingerprint``."""
        for item in self.followups(complaint_id):
            if (
                isinstance(item, m.FollowUp)
                and item.author is m.Author.INSTITUTION
                and content_fingerprint(item.content) == fingerprint
            ):
                return item
        return None

    def download(
        self, complaint_id: int, file_id: int, *, max_bytes: int = MAX_FILE_BYTES
    ) -> bytes:
        """C9: an attachment's bytes, streamed; ``MalformedRecord`` past ``max_bytes``.

        Paced and retried like every other read (it draws on the same request budget).
        """
        return self.transport.get_bytes(
            wire.attachment_path(complaint_id, file_id), max_bytes=max_bytes
        )

    # --- complaints: writes --------------------------------------------------------------

    def add_followup(self, followup: m.NewFollowUp) -> m.CreatedFollowUp:
        """C4: post a follow-up (tindak lanjut). Not deduplicated by the service: sent once."""
        if len(followup.content) > wire.MAX_FOLLOWUP_CHARS:
            raise MalformedRecord(
                f"follow-up on complaint {followup.complaint_id} is too long",
                [
                    FieldProblem(
                        "content",
                        f"at most {wire.MAX_FOLLOWUP_CHARS} characters; shorten it or split it",
                    )
                ],
                record_id=str(followup.complaint_id),
            )
        body = self.transport.post(
            wire.FOLLOWUP_ADD,
            operation="add_followup",
            lookup={
                "complaint_id": followup.complaint_id,
                "fingerprint": content_fingerprint(followup.content),
            },
            files=wire.followup_form(followup, self.institution_id),
        )
        return wire.created_followup(body)

    def create_complaint(self, complaint: m.NewComplaint) -> m.CreatedComplaint:
        """C7: create a complaint from our own channel. Sent once; look up by ``external_ref``."""
        try:
            payload = wire.complaint_body(complaint)
        except ValueError as error:
            raise MalformedRecord(str(error), record_id=complaint.external_ref) from None
        body = self.transport.post(
            wire.CREATE_COMPLAINT,
            operation="create_complaint",
            lookup={"external_ref": complaint.external_ref},
            json=payload,
        )
        answer = wire.created_complaint(body)
        if answer.created is not None:
            return answer.created
        # The answer carried only the id: read the tracking id from the detail.
        detail = self.complaint(answer.lapor_id)
        return m.CreatedComplaint(
            lapor_id=detail.lapor_id, tracking_id=detail.tracking_id, status_name=detail.status_name
        )

    def reject(self, complaint_id: int, target_institution_id: int, description: str) -> None:
        """C5: bukan wewenang, forward the complaint to the institution with authority."""
        self.transport.post(
            wire.reject_path(complaint_id),
            operation="reject",
            lookup={"complaint_id": complaint_id, "target_institution_id": target_institution_id},
            json=wire.reject_body(target_institution_id, description),
        )

    def process(self, complaint_id: int, action: str, note: str | None = None) -> None:
        """C6: ``verify``, ``postpone`` or ``archive`` a complaint."""
        self.transport.post(
            wire.process_path(complaint_id, action),
            operation=action,
            lookup={"complaint_id": complaint_id},
            json=wire.process_body(note),
        )

    def upload(self, files: Sequence[tuple[str, bytes, str]]) -> list[m.UploadedFile]:
        """C8: store files on LAPOR! before attaching them (at most 10 files of 10 MB)."""
        if not files:
            return []
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise MalformedRecord(
                "too many attachments",
                [FieldProblem("attachments", f"at most {MAX_FILES_PER_UPLOAD} files per upload")],
            )
        for name, content, _ in files:
            if len(content) > MAX_FILE_BYTES:
                raise MalformedRecord(
                    "attachment too large",
                    [
                        FieldProblem(
                            "attachments",
                            f"a file is over {MAX_FILE_BYTES // 2**20} MB; shrink or drop it",
                        )
                    ],
                    record_id=name,
                )
        body = self.transport.post(
            wire.UPLOAD,
            operation="upload",
            lookup={"files": [name for name, _, _ in files]},
            files=wire.upload_parts(files),
        )
        uploaded = wire.uploaded_files(body)
        if len(uploaded) != len(files):
            raise ProtocolError(
                f"LAPOR! {wire.UPLOAD}: sent {len(files)} files, {len(uploaded)} came back"
            )
        return uploaded
