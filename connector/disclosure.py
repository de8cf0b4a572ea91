"""What of a complaint's own texts a report for people (the timeline) may show.

Follow-up and reply texts are the complaint's own and may be shown, clipped, but never with the
reporter's identity: the reporter's known name (whole, or any part of four letters or more),
e-mail and phone, and anything shaped like an e-mail, an Indonesian mobile number or a NIK, are
replaced. Free text can name people in ways no pattern catches, so the texts of a rahasia
(secret) complaint, or of a follow-up marked secret, are withheld altogether unless asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from connector import models as m
from connector.logs import REDACTED, scrub

#: How much of a follow-up's text is shown.
TEXT_LIMIT = 160
WITHHELD = "(content withheld: rahasia; --show-content shows it)"


class Redactor:
    """Takes the reporter's known name, e-mail and phone, and personal-data shapes, out of text."""

    def __init__(self, reporters: Iterable[m.Reporter | None]) -> None:
        values: set[str] = set()
        for reporter in reporters:
            if reporter is None:
                continue
            for value in (reporter.name, reporter.email, reporter.phone):
                if value and len(value.strip()) >= 3:
                    values.add(value.strip())
            # A reply may name the reporter by one part of the name only ("Pak Zulkarnaen").
            values.update(word for word in (reporter.name or "").split() if len(word) >= 4)
        ordered = sorted(values, key=len, reverse=True)
        self._known = (
            re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE) if ordered else None
        )

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return scrub(text)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_LIMIT else flat[: TEXT_LIMIT - 1].rstrip() + "…"


@dataclass(frozen=True)
class ContentRule:
    """Whether a follow-up's text may be shown: never for a rahasia complaint unless asked for."""

    secret: bool
    show_content: bool
    redact: Redactor

    def text(self, content: str, *, is_secret: bool = False) -> str:
        """The follow-up's text as the timeline shows it: withheld, or redacted and clipped."""
        if (self.secret or is_secret) and not self.show_content:
            return WITHHELD
        return _short(self.redact(content))
