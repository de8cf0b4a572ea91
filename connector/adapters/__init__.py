"""Agency adapters: one module per kind of agency complaint system (``agency.kind``)."""

from __future__ import annotations

from connector.adapters.base import AgencyAdapter, AgencyPage
from connector.clock import Clock
from connector.config import AgencySettings

__all__ = ["AgencyAdapter", "AgencyPage", "make_adapter"]


def make_adapter(settings: AgencySettings, clock: Clock) -> AgencyAdapter:
    """The adapter for ``settings.kind``."""
    if settings.kind == "rest":
        from connector.adapters.rest import RestAdapter

        return RestAdapter(settings, clock)
    raise ValueError(
        f"unknown agency.kind {settings.kind!r}"
    )  # pragma: no cover (config validation refuses it)
