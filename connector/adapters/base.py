"""The interface every agency adapter implements: the agency side, in the canonical model.

An agency's complaint system is reached through an adapter of its kind (``agency.kind`` in the
configuration); each kind is one module in this folder. Adapters return canonical records
(``connector.models``), raise the connector's grouped errors, and make every creating write
idempotent through the ``idempotency_key`` the caller passes (the outbox's key).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from connector.models import (
    AgencyAttachment,
    AgencyCategory,
    AgencyComplaint,
    AgencyComplaintPatch,
    AgencyFollowUp,
    AgencyStatus,
    AgencyUnit,
    InvalidRecord,
    NewAgencyComplaint,
    NewAgencyFollowUp,
)

T = TypeVar("T")


@dataclass
class AgencyPage(Generic[T]):
    """One page of an agency list: valid records, invalid ones (for the quarantine), the next cursor."""

    items: list[T] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    next_cursor: str | None = None


class AgencyAdapter(ABC):
    """The agency's complaint system, as the sync engine sees it."""

    @abstractmethod
    def categories(self) -> list[AgencyCategory]:
        """The agency's category tree, flattened."""

    @abstractmethod
    def units(self) -> list[AgencyUnit]:
        """Work units a complaint can be routed to."""

    @abstractmethod
    def statuses(self) -> list[AgencyStatus]:
        """The agency's own statuses."""

    @abstractmethod
    def complaints(self, updated_since: datetime | None) -> Iterator[AgencyPage[AgencyComplaint]]:
        """Complaints updated at or after ``updated_since``, page by page, ordered by (updated_at, id)."""

    @abstractmethod
    def complaint(self, complaint_id: str) -> AgencyComplaint:
        """One complaint."""

    @abstractmethod
    def find_by_lapor_id(self, lapor_id: int) -> AgencyComplaint | None:
        """The agency complaint linked to a LAPOR! complaint, if any."""

    @abstractmethod
    def create_complaint(self, new: NewAgencyComplaint, *, idempotency_key: str) -> AgencyComplaint:
        """Create a complaint; the same key never creates a second one."""

    @abstractmethod
    def update_complaint(
        self,
        complaint_id: str,
        patch: AgencyComplaintPatch,
        *,
        if_unmodified_since: datetime | None = None,
    ) -> AgencyComplaint:
        """Change some fields; ``Conflict`` if the complaint changed after ``if_unmodified_since``."""

    @abstractmethod
    def followups(self, complaint_id: str) -> list[AgencyFollowUp]:
        """Follow-ups and replies of one complaint."""

    @abstractmethod
    def followups_since(
        self, updated_since: datetime | None
    ) -> Iterator[AgencyPage[AgencyFollowUp]]:
        """Follow-ups across complaints updated at or after ``updated_since``, page by page."""

    @abstractmethod
    def add_followup(
        self, complaint_id: str, new: NewAgencyFollowUp, *, idempotency_key: str
    ) -> AgencyFollowUp:
        """Add a follow-up or reply; the same key never adds a second one."""

    @abstractmethod
    def download_attachment(self, attachment: AgencyAttachment, *, max_bytes: int) -> bytes:
        """An attachment's content (at most ``max_bytes``)."""

    @abstractmethod
    def upload_attachment(
        self,
        complaint_id: str,
        file: tuple[str, bytes, str],
        *,
        idempotency_key: str,
        followup_id: str | None = None,
    ) -> AgencyAttachment:
        """Attach a file (name, bytes, content type) to a complaint, or to one of its follow-ups;
        the same key never attaches a second copy."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
