"""Master data (the category trees) kept in the state between runs, so an idle minute costs no
list requests: fetched when missing or older than the refresh interval (daily by default), and
at once when a record names a category the cached tree does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel

from connector import models as m
from connector.clock import Clock
from connector.logs import get_logger
from connector.state import StateStore

log = get_logger("master_data")

M = TypeVar("M", bound=BaseModel)

LAPOR_CATEGORIES = "lapor.categories"
AGENCY_CATEGORIES = "agency.categories"


class MasterData:
    """Cached master data of both sides, read through to the service when stale."""

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        *,
        lapor_categories: Callable[[], list[m.Category]],
        agency_categories: Callable[[], list[m.AgencyCategory]],
        refresh: timedelta,
    ) -> None:
        self._store = store
        self._clock = clock
        self._refresh = refresh
        self._fetchers: dict[str, Callable[[], list[BaseModel]]] = {
            LAPOR_CATEGORIES: lapor_categories,  # type: ignore[dict-item]
            AGENCY_CATEGORIES: agency_categories,  # type: ignore[dict-item]
        }
        self._fetched_now: set[str] = set()  # refreshed in this run: not again for a miss

    def lapor_categories(self) -> list[m.Category]:
        return self._get(LAPOR_CATEGORIES, m.Category)

    def agency_categories(self) -> list[m.AgencyCategory]:
        return self._get(AGENCY_CATEGORIES, m.AgencyCategory)

    def refresh_for_unknown(self, name: str) -> bool:
        """A record named something the cached ``name`` does not know: fetch it again, once
        per run. Return whether a fresh copy was fetched (False: it already was this run)."""
        if name in self._fetched_now:
            return False
        log.info("master_data_refreshed_for_unknown_id", name=name)
        self._fetch(name)
        return True

    def _get(self, name: str, model: type[M]) -> list[M]:
        cached = self._store.cached(name)
        if cached is not None:
            body, fetched_at = cached
            if self._clock.now() - fetched_at < self._refresh and isinstance(body, list):
                try:
                    return [model.model_validate(item) for item in body]
                except ValueError:
                    log.warning("master_data_cache_unreadable", name=name)
        return self._fetch(name)  # type: ignore[return-value]

    def _fetch(self, name: str) -> list[BaseModel]:
        records = self._fetchers[name]()
        self._fetched_now.add(name)
        with self._store.transaction():
            self._store.cache(name, [r.model_dump(mode="json") for r in records])
        return records
