"""Later changes of LAPOR!'s own fields of a linked complaint: title, content, category, report type.

LAPOR! owns what the citizen wrote and how it is classified; an admin there may correct it after
the complaint reached the agency. The link keeps what the agency was last told of these fields
(``lapor_fields``: fingerprints of the title and content, never their text, and the category
and report type ids). A changed complaint's record is compared with it at no extra request:
the listing (C1) carries the title, category and report type; the content only the detail (C2),
so a content change is seen whenever the detail is read anyway (an operator's resync, a replay,
a write resolved by re-reading). What changed is sent in the complaint's update PATCH, with the
marker ``changed_on_lapor`` the agency can show. A category change keeps the agency's unit
unless ``categories.yaml: on_lapor_change.move_unit`` says otherwise.
"""

from __future__ import annotations

from typing import Any

from connector import models as m
from connector.lapor.client import content_fingerprint
from connector.mappings import Mappings

#: The tracked fields, by the names the agency's marker uses.
TRACKED = ("title", "content", "category", "classification")


def lapor_fields(complaint: m.ComplaintSummary) -> dict[str, Any]:
    """What a record says of the tracked fields (the content only when it carries it: C2)."""
    fields: dict[str, Any] = {
        "title": content_fingerprint(complaint.title),
        "category": complaint.category_id,
        "classification": complaint.classification_id,
    }
    if isinstance(complaint, m.Complaint):
        fields["content"] = content_fingerprint(complaint.content)
    return fields


def filed_fields(new: m.NewComplaint) -> dict[str, Any]:
    """The tracked fields of a complaint the agency filed on LAPOR! (the agency holds them)."""
    return {
        "title": content_fingerprint(new.title),
        "content": content_fingerprint(new.content),
        "category": new.category_id,
        "classification": new.classification_id,
    }


def changed_fields(known: dict[str, Any] | None, seen: dict[str, Any]) -> list[str]:
    """The tracked fields whose value differs from what the agency was told, in ``TRACKED``
    order. A field the agency was never told of (a link older than the record) is no change:
    the first sight only records it."""
    if known is None:
        return []
    return [
        name for name in TRACKED if name in seen and name in known and seen[name] != known[name]
    ]


def change_patch(
    mappings: Mappings, complaint: m.ComplaintSummary, changed: list[str], *, record: str
) -> dict[str, Any]:
    """The PATCH fields carrying the changes: new values translated through the mappings, and
    the ``changed_on_lapor`` marker. A value the mappings do not cover raises ``MappingError``
    (the complaint is quarantined with the fix, like a new one)."""
    patch: dict[str, Any] = {}
    if "title" in changed:
        patch["title"] = complaint.title
    if "content" in changed and isinstance(complaint, m.Complaint):
        patch["content"] = complaint.content
    if "category" in changed:
        code = mappings.category_to_agency(complaint.category_id or 0, record=record)
        patch["category_code"] = code
        if mappings.moves_unit_on_lapor_change:
            patch["unit_code"] = mappings.unit_for_category(code, record=record)
    if "classification" in changed:
        patch["classification"] = mappings.classification_to_agency(
            complaint.classification_id or 0, record=record
        )
    marker = m.LaporChange(fields=tuple(changed), at=complaint.updated_at)
    patch["changed_on_lapor"] = marker.model_dump(mode="json")
    return patch
