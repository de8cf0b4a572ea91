"""Fault rules of the simulator's control plane (contract section 6), matched per route."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

MODES = frozenset(
    {
        "bad_request", "unauthenticated", "forbidden", "not_found", "conflict", "too_large",
        "validation", "rate_limit", "server_error", "bad_gateway", "unavailable", "gateway_timeout",
        "soft_error", "slow", "drop_after_commit", "page_repeat", "item_moved", "empty_page", "malformed",
    }
)  # fmt: skip
VARIANTS = frozenset(
    {"wrong_type", "missing_field", "unknown_status", "naive_timestamp", "odd_unicode"}
)


@dataclass
class FaultRule:
    """Fire ``mode`` on the next ``count`` requests to ``route`` (or on a ``rate`` of them)."""

    id: int
    route: str
    mode: str
    count: int | None = None
    rate: float | None = None
    retry_after: str | None = None
    delay: float | None = None
    variant: str | None = None


class FaultBook:
    """The active fault rules; thread-safe, seeded for repeatable ``rate`` rules."""

    def __init__(self, seed: int) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from its JSON form; raise ValueError naming the bad field."""
        mode = spec.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode: unknown mode {mode!r}; one of {sorted(MODES)}")
        count, rate = spec.get("count"), spec.get("rate")
        if count is None and rate is None:
            count = 1
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count: a positive whole number")
        if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate <= 1):
            raise ValueError("rate: a fraction in (0, 1]")
        variant = spec.get("variant")
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f"variant: one of {sorted(VARIANTS)}")
        with self._lock:
            rule = FaultRule(
                id=self._next_id,
                route=str(spec.get("route") or "*"),
                mode=mode,
                count=count,
                rate=float(rate) if rate is not None else None,
                retry_after=None if spec.get("retry_after") is None else str(spec["retry_after"]),
                delay=float(spec["delay"]) if spec.get("delay") is not None else None,
                variant=variant,
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def take(self, route: str) -> FaultRule | None:
        """The rule that fires for this request to ``route``, if any (counting it down)."""
        with self._lock:
            for rule in self._rules:
                if rule.route not in ("*", route):
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                    return rule
                if rule.rate is not None and self._rng.random() < rule.rate:
                    return rule
            return None
