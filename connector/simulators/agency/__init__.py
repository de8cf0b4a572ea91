"""The demo agency system: the agency REST contract v1 served for real, on its own SQLite file.

It stands in for an agency's complaint application in the demo and the tests. The connector
reaches it only over HTTP, through its ``rest`` adapter; it imports nothing from ``connector``.
"""

from __future__ import annotations

import base64
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from connector.simulators.agency.server import BASE, AgencyServer
from connector.simulators.agency.store import AgencyStore

__all__ = ["AgencyControl", "AgencySystem", "serve_forever"]

DEFAULT_TOKEN = "demo-agency-token"  # noqa: S105 (the demo system's own token)


class AgencySystem:
    """The demo agency system on a loopback port, served from a background thread."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        complaints: int = 5,
        seed: int = 1,
        control: bool = True,
        latency_ms: float = 0,
    ) -> None:
        self.token = token
        self.store = AgencyStore(Path(db_path), complaints=complaints, seed=seed)
        self._server = AgencyServer(
            (host, port), store=self.store, token=token, control=control, latency_ms=latency_ms
        )
        self.root_url = f"http://{host}:{self._server.server_port}"
        self.base_url = self.root_url + BASE
        self._thread: threading.Thread | None = None

    def start(self) -> AgencySystem:
        """Serve in a daemon thread; return self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="agency-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the database: answers waiting out their latency go at once."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self.store.close()

    def __enter__(self) -> AgencySystem:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AgencyControl:
    """Drive the demo agency system: staff actions, counters, faults (test and demo only)."""

    def __init__(self, root_url: str, *, timeout: float = 10) -> None:
        self.root_url = root_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            method, f"{self.root_url}/_sim/{path}", json=body or {}, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"control plane {method} /_sim/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    def stats(self) -> dict[str, Any]:
        """API ``requests`` and applied ``writes`` per route, and ``latency_ms``."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def set_latency(self, ms: float) -> float:
        """Delay every API request by ``ms`` milliseconds from the next one on."""
        return float(self._call("POST", "latency", {"ms": ms})["latency_ms"])

    def writes(self, route: str) -> int:
        """Writes applied on a route: create, patch, add_followup."""
        return int(self.stats()["writes"].get(route, 0))

    def requests(self, route: str) -> int:
        """Requests received on a route (complaints, complaint, create, patch, followups, add_followup, ...)."""
        return int(self.stats()["requests"].get(route, 0))

    def add_internal_complaint(self, **fields: Any) -> str:
        """A citizen comes to the counter (or writes on WhatsApp): a new internal complaint."""
        return str(self._call("POST", "complaints", fields)["id"])

    def add_staff_followup(
        self,
        complaint_id: str,
        content: str,
        status_after: str | None = None,
        *,
        is_secret: bool = False,
        files: Sequence[tuple[str, bytes, str]] = (),
    ) -> str:
        """An officer writes a tindak lanjut, optionally moving the status, with files attached
        (file name, bytes, content type)."""
        body: dict[str, Any] = {
            "content": content,
            "status_after": status_after,
            "is_secret": is_secret,
        }
        if files:
            body["files"] = [
                {"file_name": n, "content_b64": base64.b64encode(d).decode(), "content_type": t}
                for n, d, t in files
            ]
        return str(self._call("POST", f"complaints/{complaint_id}/followups", body)["id"])

    def edit(self, complaint_id: str, **fields: Any) -> None:
        """An officer edits a complaint (title, content, category, unit, flags...)."""
        self._call("POST", f"complaints/{complaint_id}/edit", fields)

    def refuse_fields(self, *names: str) -> list[str]:
        """Refuse these PATCH fields from now on (422 naming each), as an older agency system
        that does not know an optional field does; none given: accept every field again."""
        return list(self._call("POST", "refuse", {"fields": list(names)})["refused"])

    def delete(self, complaint_id: str) -> None:
        """An officer deletes a complaint: the API answers 404 for it from now on."""
        self._call("POST", f"complaints/{complaint_id}/delete")

    def set_status(self, complaint_id: str, status: str) -> None:
        self._call("POST", f"complaints/{complaint_id}/status", {"status": status})

    def complaints(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "complaints")
        return result

    def inject(
        self,
        route: str,
        record: Any = None,
        *,
        records: list[Any] | None = None,
        raw_json: str | list[str] | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` list answers of ``route`` carry raw records (test only).

        ``complaints`` adds them to ``GET /complaints`` pages, ``followups`` to ``GET /followups``
        pages, after the real items. ``raw_json`` gives records as JSON texts, sent as they are
        (for nesting json.dumps cannot write).
        """
        body: dict[str, Any] = {"route": route, "count": count, "records": list(records or [])}
        if record is not None:
            body["record"] = record
        if raw_json is not None:
            body["raw_json"] = raw_json
        self._call("POST", "inject", body)

    def clear_injections(self) -> None:
        self._call("DELETE", "inject")

    def add_fault(self, route: str, mode: str, count: int = 1) -> None:
        """Modes: server_error, unavailable, rate_limit, drop_after_commit, malformed (first list item)."""
        self._call("POST", "faults", {"route": route, "mode": mode, "count": count})


def serve_forever(
    *,
    db_path: Path,
    host: str,
    port: int,
    token: str,
    complaints: int,
    seed: int,
    control: bool,
    latency_ms: float = 0,
) -> None:
    """Run the demo agency system in the foreground until SIGINT or SIGTERM."""
    system = AgencySystem(
        db_path,
        host=host,
        port=port,
        token=token,
        complaints=complaints,
        seed=seed,
        control=control,
        latency_ms=latency_ms,
    ).start()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"demo agency system ready: {system.base_url}", flush=True)  # noqa: T201 (the CLI's output)
    print(f"  token: {token}\n  database: {db_path}", flush=True)  # noqa: T201
    print(f"  latency: {latency_ms:g} ms", flush=True)  # noqa: T201
    stopped.wait()
    system.stop()
