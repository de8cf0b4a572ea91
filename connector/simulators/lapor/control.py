"""``SimControl``: a client of the simulator's control plane, for tests and the demo."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import requests

#: A file as the control plane takes it: (file name, bytes, content type).
File = tuple[str, bytes, str]


def _files(files: Sequence[File]) -> list[dict[str, str]]:
    return [
        {"file_name": n, "content_b64": base64.b64encode(d).decode(), "content_type": t}
        for n, d, t in files
    ]


class SimControl:
    """Drive a running LAPOR! simulator: faults, clock, citizen and admin actions, counters."""

    def __init__(self, root_url: str, *, timeout: float = 10) -> None:
        self.root_url = root_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            method, f"{self.root_url}/_sim/{path}", json=body, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"control plane {method} /_sim/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    def reset(self, seed: int = 1, complaints: int = 40) -> None:
        self._call("POST", "reset", {"seed": seed, "complaints": complaints})

    def set_dialect(self, name: str) -> None:
        """Speak dialect ``name`` from the next request on (see ``connector.simulators.lapor.dialects``)."""
        self._call("POST", "dialect", {"name": name})

    def dialect(self) -> str:
        return str(self._counters()["dialect"])

    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_sim/stats`` tells, the timeline included."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def _counters(self) -> dict[str, Any]:
        """The stats without the timeline (which may hold 200,000 entries)."""
        result: dict[str, Any] = self._call("GET", "stats?timeline=0")
        return result

    def requests(self, route: str) -> int:
        """Requests received on ``route`` (counted before authentication)."""
        return int(self._counters()["requests"].get(route, 0))

    def writes(self, route: str) -> int:
        """Writes applied on ``route``."""
        return int(self._counters()["writes"].get(route, 0))

    def statuses(self) -> dict[int, int]:
        """API answers per HTTP status (0: a connection dropped without an answer)."""
        return {int(code): int(n) for code, n in self._counters()["statuses"].items()}

    def timeline(self) -> list[tuple[float, str, int | None]]:
        """``(t, route, status)`` of the most recent API requests, in arrival order.

        ``t`` is seconds since the simulator process started (monotonic clock); ``status`` is
        None while the request is still being answered.
        """
        return [(float(t), str(route), status) for t, route, status in self.stats()["timeline"]]

    def reset_stats(self) -> None:
        """Zero requests, writes, statuses and rate_limited, and empty the timeline (not the world)."""
        self._call("POST", "stats/reset")

    def set_latency(self, ms: float) -> float:
        """Delay every API request by ``ms`` milliseconds from the next one on."""
        return float(self._call("POST", "latency", {"ms": ms})["latency_ms"])

    def now(self) -> datetime:
        return datetime.fromisoformat(self._counters()["now"])

    def set_clock(self, moment: datetime) -> datetime:
        return datetime.fromisoformat(
            self._call("POST", "clock", {"set": moment.isoformat()})["now"]
        )

    def advance_workdays(self, days: int) -> datetime:
        return datetime.fromisoformat(
            self._call("POST", "clock", {"advance_workdays": days})["now"]
        )

    def advance_seconds(self, seconds: float) -> datetime:
        return datetime.fromisoformat(
            self._call("POST", "clock", {"advance_seconds": seconds})["now"]
        )

    def submit(self, *, files: Sequence[File] = (), **complaint: Any) -> int:
        """A citizen submits a complaint (title, content, category_id, is_secret, is_anonymous,
        reporter), with files attached: (file name, bytes, content type) each."""
        body = {**complaint, "files": _files(files)}
        return int(self._call("POST", "citizen/submit", body)["complaint_id"])

    def reply(self, complaint_id: int, content: str, *, files: Sequence[File] = ()) -> int:
        """The citizen replies, with files attached: (file name, bytes, content type) each."""
        body = {"complaint_id": complaint_id, "content": content, "files": _files(files)}
        return int(self._call("POST", "citizen/reply", body)["id"])

    def attach(self, complaint_id: int, *files: File) -> list[int]:
        """The citizen adds files to a complaint already filed; their LAPOR! file ids."""
        body = {"complaint_id": complaint_id, "files": _files(files)}
        return [int(i) for i in self._call("POST", "citizen/attach", body)["ids"]]

    def file(self, file_id: int) -> tuple[str, bytes, str]:
        """A file stored on LAPOR! (a citizen's upload, or one a C4 follow-up carried)."""
        found = self._call("GET", f"files/{file_id}")
        return found["file_name"], base64.b64decode(found["content_b64"]), found["content_type"]

    def note(self, complaint_id: int, content: str) -> int:
        return int(
            self._call("POST", "admin/note", {"complaint_id": complaint_id, "content": content})[
                "id"
            ]
        )

    def dispose(self, complaint_id: int, institution_id: int) -> None:
        self._call(
            "POST",
            "admin/dispose",
            {"complaint_id": complaint_id, "institution_id": institution_id},
        )

    def edit(self, complaint_id: int, **changes: Any) -> list[str]:
        """An admin edits a complaint on LAPOR! (``title``, ``content``, ``category_id``,
        ``classification_id``): ``updated_at`` moves and C2's history gets an ``edit`` entry.
        Returns the fields that changed."""
        body = {"complaint_id": complaint_id, **changes}
        return [str(name) for name in self._call("POST", "admin/edit", body)["changed"]]

    def archive(self, complaint_id: int) -> None:
        self._call("POST", "admin/archive", {"complaint_id": complaint_id})

    def remove(self, complaint_id: int) -> None:
        """The admin removes a complaint: C1 no longer lists it, C2 answers 404."""
        self._call("POST", "admin/remove", {"complaint_id": complaint_id})

    def close(self, complaint_id: int) -> None:
        self._call("POST", "admin/close", {"complaint_id": complaint_id})

    def touch(
        self,
        ids: list[int] | None = None,
        count: int | None = None,
        close: bool = False,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Update many complaints at one new moment (``ids``, or the first ``count`` of ours by id).

        With ``close``, those not already terminal also become done, as auto-close does.
        Returns ``{"touched": n, "at": iso}``.
        """
        body: dict[str, Any] = {"close": close}
        if ids is not None:
            body["ids"] = list(ids)
        if count is not None:
            body["count"] = count
        if status is not None:
            body["status"] = status
        result: dict[str, Any] = self._call("POST", "admin/touch", body)
        return result

    def add_fault(
        self,
        route: str,
        mode: str,
        *,
        count: int | None = None,
        rate: float | None = None,
        retry_after: str | None = None,
        delay: float | None = None,
        variant: str | None = None,
    ) -> int:
        spec = {"route": route, "mode": mode, "count": count, "rate": rate, "retry_after": retry_after,
                "delay": delay, "variant": variant}  # fmt: skip
        return int(self._call("POST", "faults", spec)["id"])

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def inject(
        self,
        route: str,
        record: Any = None,
        *,
        records: list[Any] | None = None,
        raw_json: str | list[str] | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` answers of ``route`` (inbox, complaint, followups) carry raw records.

        Added to an inbox or follow-ups page's data list; for a complaint, its detail's data.
        ``raw_json`` gives records as JSON texts, sent as they are (for nesting json cannot write).
        """
        body: dict[str, Any] = {"route": route, "count": count, "records": list(records or [])}
        if record is not None:
            body["record"] = record
        if raw_json is not None:
            body["raw_json"] = raw_json
        self._call("POST", "inject", body)

    def clear_injections(self) -> None:
        self._call("DELETE", "inject")

    def complaints(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "complaints")
        return result

    def followups(self, complaint_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"complaints/{complaint_id}/followups")
        return result
