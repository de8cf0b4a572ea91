"""Lazily paged LAPOR! lists that cannot loop forever, duplicate, or skip for good.

A ``Listing`` fetches one page at a time and yields records as it goes, so memory does not grow
with the number of pages. Guards against the pagination faults of contract section 6:

- a page cap (``max_pages``) and a ``next_page_url`` that goes backwards stop the listing with
  a ``ProtocolError`` instead of looping;
- a page that repeats the previous one, or an empty page that still points further, is asked
  for again (up to ``ANOMALY_RETRIES`` times) before the listing moves on, so a glitch does not
  drop the page it stood in for;
- keyset mode (the inbox, ordered by ``(updated_at, id)``): the next request is re-anchored on
  the last key yielded when few records share its timestamp, so an item that moves while we page
  cannot push another one out of sight; anything at or before the last key (a repeat) is
  dropped. Where a page ends inside a long run of one timestamp (LAPOR! closing a thousand
  complaints at once), re-anchoring would read the whole run again for every page, so the
  listing goes on by page number instead and N such records cost ceil(N / page size) requests;
  if a record it saw in that stretch shows up again later (it was updated meanwhile, so the
  ones behind it slid back a place), the stretch is read once more at the end and only what
  was missed is yielded.
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
    rewinds: int = 0


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
        #: How many records the first page said the listing holds (None: not said).
        self.total: int | None = None

    def __iter__(self) -> Iterator[T | InvalidRecord]:
        for page in self.pages():
            yield from page.records
            yield from page.invalid

    def pages(self) -> Iterator[ListPage[T]]:
        """Fetch and yield page after page until the list ends."""
        state = _Keyset()
        params = dict(self._params)
        number = 1
        previous_ids: tuple[object, ...] | None = None
        anomaly_retries = 0
        while True:
            page = self._fetch(params, number)
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

            result = self._read(page, number, state)
            yield result

            if page.next_page is None:
                break
            if (
                self._key is not None
                and result.records  # a page of repeats only moves on by number: no loop
                and state.should_reanchor(self._page_size)
            ):
                # Keyset: ask again from the last key when that costs (almost) nothing, so an
                # item that moves while we page cannot push another one out of sight. When many
                # records share the last timestamp, re-anchoring would re-read all of them, so
                # the listing goes on by page number and watches for moves instead.
                assert self._anchor is not None
                assert state.last is not None
                state.reanchor()
                params = {**self._params, **self._anchor(state.last[0])}
                number = 1
                continue
            if page.next_page <= number:
                raise ProtocolError(
                    f"LAPOR! {self._path}: page {number} points back to page {page.next_page}; "
                    "stopping instead of looping"
                )
            state.paged_on()
            number = page.next_page
        if self._key is not None:
            yield from self._rewind(state)

    def _fetch(self, params: Mapping[str, str], number: int) -> wire.Page:
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
        if self.total is None and page.total is not None:
            self.total = page.total  # what the first page says is left: a progress estimate
        return page

    def _read(
        self,
        page: wire.Page,
        number: int,
        state: _Keyset | None,
        *,
        keep: Callable[[T], bool] | None = None,
    ) -> ListPage[T]:
        """One page's records (valid ones in order, invalid ones set aside)."""
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
                result.invalid.append(InvalidRecord.from_error(self._source, error, shallow(raw)))
                continue
            if keep is not None:
                if keep(record):
                    result.records.append(record)
                continue
            if self._key is not None and state is not None:
                record_key = self._key(record)
                if not state.take(record_key):
                    self.stats.duplicates_dropped += 1
                    continue
            result.records.append(record)
        self.stats.records += len(result.records)
        self.stats.invalid += len(result.invalid)
        if result.invalid:
            log.warning(
                "lapor_records_invalid", path=self._path, page=number, count=len(result.invalid)
            )
        return result

    def _rewind(self, state: _Keyset) -> Iterator[ListPage[T]]:
        """Read again a stretch listed by page number in which a record moved (it was updated
        while we paged, so the records behind it slid one place towards the start and one may
        have slipped past): only what was not seen the first time is yielded."""
        for span in state.moved_spans():
            assert self._anchor is not None
            assert self._key is not None
            self.stats.rewinds += 1
            log.info("lapor_listing_rewound", path=self._path, records=len(span.ids))
            params = {**self._params, **self._anchor(span.start[0])}
            key = self._key
            number = 1
            while True:
                page = self._fetch(params, number)
                beyond = False

                def keep(record: T, span: _Span = span, key: Callable[[T], Key] = key) -> bool:
                    nonlocal beyond
                    record_key = key(record)
                    if record_key > span.end:
                        beyond = True
                        return False
                    return record_key >= span.start and record_key[1] not in span.ids

                result = self._read(page, number, None, keep=keep)
                if result.records or result.invalid:
                    yield result
                if beyond or page.next_page is None or page.next_page <= number:
                    break
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


@dataclass
class _Span:
    """Records listed by page number from one anchor: where it began and ended, and their ids."""

    start: Key
    end: Key
    ids: set[int] = field(default_factory=set)
    moved: bool = False


class _Keyset:
    """Where a keyset listing stands: the last key, and the stretches read by page number.

    Re-anchoring on the last key is free when few records share its timestamp; when a page ends
    inside a long run of one timestamp, the listing goes on by page number from the same anchor
    and remembers the ids it saw since that anchor. A record seen again later with a newer key
    moved while we paged: its stretch is read again at the end (``moved_spans``)."""

    def __init__(self) -> None:
        self.last: Key | None = None
        self._start: Key | None = None  # the first key of the current stretch
        self._tail: set[int] = set()  # ids at the last key's timestamp
        self._ids: set[int] = set()  # ids seen in the current stretch
        self._moved = False
        self._by_number = False  # the current stretch went on by page number
        self._spans: list[_Span] = []
        self._watched: dict[int, _Span] = {}

    def take(self, key: Key) -> bool:
        """Whether a record with this key is new (not a repeat of one already yielded)."""
        if self.last is not None and key <= self.last:
            return False
        record_id = key[1]
        span = self._watched.get(record_id)
        if span is not None:
            span.moved = True  # seen before in a closed stretch, and now with a newer key
        if record_id in self._ids:
            self._moved = True
        if self._start is None:
            self._start = key
        if self.last is None or key[0] != self.last[0]:
            self._tail = set()
        self._tail.add(record_id)
        self._ids.add(record_id)
        self.last = key
        return True

    def should_reanchor(self, page_size: int) -> bool:
        """Re-anchor unless that would re-read more than a tenth of a page of repeats."""
        return self.last is not None and len(self._tail) * 10 <= page_size

    def reanchor(self) -> None:
        """A new stretch begins at the last timestamp (its records come again first)."""
        self._close()
        assert self.last is not None
        self._start = (self.last[0], 0)
        self._ids = set(self._tail)

    def paged_on(self) -> None:
        self._by_number = True

    def _close(self) -> None:
        if self._by_number and self._start is not None and self.last is not None:
            span = _Span(start=self._start, end=self.last, ids=self._ids, moved=self._moved)
            self._spans.append(span)
            self._watched.update(dict.fromkeys(span.ids, span))
        self._by_number = False
        self._moved = False

    def moved_spans(self) -> list[_Span]:
        self._close()
        return [span for span in self._spans if span.moved]


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
