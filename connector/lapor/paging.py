"""Lazily paged LAPOR! lists that cannot loop forever, duplicate, or skip for good.

A ``Listing`` fetches one page at a time and yields records as it goes, so memory does not grow
with the number of pages. Guards against the pagination faults of contract section 6:

- a page cap (``max_pages``) and a ``next_page_url`` that goes backwards stop the listing with
  a ``ProtocolError`` instead of looping;
- a page that repeats the previous one, or an empty page that still points further, is asked
  for again (up to ``ANOMALY_RETRIES`` times) before the listing moves on, so a glitch does not
  drop the page it stood in for;
- keyset mode (the inbox, ordered by ``(updated_at, id)``): each request is re-anchored on the
  last key yielded, so an item that moves while we page cannot push another one out of sight,
  and anything at or before the last key (a repeat) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from connector.errors import FieldProblem, MalformedRecord, ProtocolError, RecordError
from connector.lapor import wire
from connector.lapor.transport import LaporTransport
from connector.logs import get_logger
from connector.models import InvalidRecord
from connector.untrusted import shallow

log = get_logger("lapor.paging")

T = TypeVar("T")
Key = tuple[datetime, int]

#: Times a suspicious page (a repeat, or empty yet pointing further) is asked for again.
ANOMALY_RETRIES = 2


@dataclass
class ListPage(Generic[T]):
    """One fetched page: its valid records, its invalid ones, and the service's clock."""

    number: int
    records: list[T] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    server_time: datetime | None = None


@dataclass
class ListingStats:
    """What a listing did, for logs and tests."""

    requests: int = 0
    records: int = 0
    invalid: int = 0
    duplicates_dropped: int = 0
    anomalies: int = 0


class Listing(Generic[T]):
    """A paged LAPOR! list, fetched lazily. Iterate records, or ``pages()`` to commit per page."""

    def __init__(
        self,
        transport: LaporTransport,
        path: str,
        parse: Callable[[object], T],
        *,
        source: str,
        params: Mapping[str, str] | None = None,
        page_size: int,
        max_pages: int,
        key: Callable[[T], Key] | None = None,
        anchor: Callable[[datetime], Mapping[str, str]] | None = None,
    ) -> None:
        if (key is None) != (anchor is None):
            raise ValueError("keyset mode needs both key and anchor")
        self._transport = transport
        self._path = path
        self._parse = parse
        self._source = source
        self._params = dict(params or {})
        self._page_size = page_size
        self._max_pages = max_pages
        self._key = key
        self._anchor = anchor
        self.stats = ListingStats()
        #: The service's time at the last page fetched: the next safe ``updated_since``.
        self.server_time: datetime | None = None

    def __iter__(self) -> Iterator[T | InvalidRecord]:
        for page in self.pages():
            yield from page.records
            yield from page.invalid

    def pages(self) -> Iterator[ListPage[T]]:
        """Fetch and yield page after page until the list ends."""
        params = dict(self._params)
        number = 1
        last_key: Key | None = None
        previous_ids: tuple[object, ...] | None = None
        anomaly_retries = 0
        while True:
            if self.stats.requests >= self._max_pages:
                raise ProtocolError(
                    f"LAPOR! {self._path}: still paging after {self._max_pages} pages; the service "
                    "may be looping (raise lapor.max_pages if the list really is that long)"
                )
            body = self._transport.get(
                self._path, {**params, **wire.page_params(number, self._page_size)}
            )
            self.stats.requests += 1
            page = wire.page(body, self._path, number)
            if page.server_time is not None:
                self.server_time = page.server_time
            ids = tuple(
                item.get("id") if isinstance(item, Mapping) else None for item in page.items
            )
            suspicious = page.next_page is not None and (
                not page.items or (previous_ids is not None and ids == previous_ids)
            )
            if suspicious and anomaly_retries < ANOMALY_RETRIES:
                anomaly_retries += 1
                self.stats.anomalies += 1
                log.warning("lapor_page_suspicious", path=self._path, page=number, items=len(ids))
                continue
            anomaly_retries = 0
            previous_ids = ids

            result: ListPage[T] = ListPage(number=number, server_time=page.server_time)
            for raw in page.items:
                try:
                    if not isinstance(raw, Mapping):
                        raise MalformedRecord(
                            f"LAPOR! {self._path}: a list item is not an object",
                            [FieldProblem("(record)", f"expected an object, got {_kind(raw)}")],
                        )
                    record = self._parse(raw)
                except RecordError as error:
                    # Kept in quarantine as received, but never nested deeper than the reader takes.
                    invalid = InvalidRecord.from_error(self._source, error, shallow(raw))
                    result.invalid.append(invalid)
                    continue
                if self._key is not None:
                    record_key = self._key(record)
                    if last_key is not None and record_key <= last_key:
                        self.stats.duplicates_dropped += 1
                        continue
                    last_key = record_key
                result.records.append(record)
            self.stats.records += len(result.records)
            self.stats.invalid += len(result.invalid)
            if result.invalid:
                log.warning(
                    "lapor_records_invalid", path=self._path, page=number, count=len(result.invalid)
                )
            yield result

            if page.next_page is None:
                return
            if self._anchor is not None and result.records and last_key is not None:
                # Keyset: ask again from the last key, so nothing shifts out of reach.
                params = {**self._params, **self._anchor(last_key[0])}
                number = 1
                continue
            if page.next_page <= number:
                raise ProtocolError(
                    f"LAPOR! {self._path}: page {number} points back to page {page.next_page}; "
                    "stopping instead of looping"
                )
            number = page.next_page

    def all(self) -> list[T]:
        """Fetch everything; raise ``MalformedRecord`` on the first invalid record (master data)."""
        records: list[T] = []
        for page in self.pages():
            if page.invalid:
                bad = page.invalid[0]
                raise MalformedRecord(
                    f"LAPOR! sent an invalid {bad.source} record",
                    bad.problems,
                    record_id=bad.record_id,
                )
            records.extend(page.records)
        return records


def _kind(value: object) -> str:
    """A JSON value's kind, for a problem text (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else type(value).__name__
