"""The audit journal: an append-only event log plus a per-parcel projection for queries.

Both tables are written in one transaction, so the projection never disagrees with the log.
The same schema runs on SQLite (embedded default) and PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from smartscreen.domain.decision import Route
from smartscreen.domain.events import (
    DeadlineMissed,
    GateAcknowledged,
    GateCommanded,
    OperatorVerdict,
    ParcelDecided,
    ParcelDetected,
    ParcelEntered,
    ParcelEvent,
    ParcelScanned,
    WaybillMatched,
)
from smartscreen.errors import StorageError
from smartscreen.journal.codec import decode_event, encode_event
from smartscreen.journal.db import Database, SqlValue

logger = logging.getLogger(__name__)

ReviewStatus = Literal["none", "pending", "reviewed"]
GateStatus = Literal["pending", "commanded", "acknowledged", "refused", "missed"]

_PARCEL_COLUMNS = (
    "parcel_id",
    "centre_id",
    "line_id",
    "entered_at_ns",
    "tracking_no",
    "barcode_outcome",
    "route",
    "fail_closed",
    "risk_score",
    "reason_codes",
    "detected_classes",
    "max_score",
    "detector_error",
    "raw_sha256",
    "render_sha256",
    "scan_complete",
    "decided_at_ns",
    "gate_status",
    "review_status",
    "last_verdict",
    "last_seq",
)


@dataclass(frozen=True, slots=True)
class ParcelRecord:
    """One parcel as the review queue sees it (read side; rebuilt from events)."""

    parcel_id: str
    centre_id: str
    line_id: str
    entered_at_ns: int
    tracking_no: str
    barcode_outcome: str
    route: Route | None
    fail_closed: bool
    risk_score: float | None
    reason_codes: tuple[str, ...]
    detected_classes: tuple[str, ...]
    max_score: float | None
    detector_error: str
    raw_sha256: str
    render_sha256: str
    scan_complete: bool | None
    decided_at_ns: int | None
    gate_status: GateStatus
    review_status: ReviewStatus
    last_verdict: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class ParcelQuery:
    """Filter and page for :meth:`Journal.parcels`; results are oldest first."""

    centre_id: str | None = None
    line_ids: tuple[str, ...] | None = None
    review_status: ReviewStatus | None = None
    class_name: str | None = None
    route: Route | None = None
    offset: int = 0
    limit: int = 50
    newest_first: bool = False
    parcel_ids: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")


def _csv(values: Sequence[str]) -> str:
    """Stored as ``,a,b,`` so ``LIKE '%,a,%'`` matches whole names."""
    return "," + ",".join(values) + "," if values else ""


def _uncsv(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


class Journal:
    """Implements ``smartscreen.domain.ports.ReviewStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._create_schema()

    @classmethod
    def open(cls, url: str) -> Journal:
        return cls(Database.open(url))

    def _create_schema(self) -> None:
        self.db.script(
            [
                f"""CREATE TABLE IF NOT EXISTS journal_events (
                    seq {self.db.autoincrement_pk},
                    parcel_id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    at_ns BIGINT NOT NULL,
                    recorded_at_ns BIGINT NOT NULL,
                    payload TEXT NOT NULL)""",
                "CREATE INDEX IF NOT EXISTS journal_events_parcel ON journal_events (parcel_id, seq)",
                """CREATE TABLE IF NOT EXISTS journal_parcels (
                    parcel_id TEXT PRIMARY KEY,
                    centre_id TEXT NOT NULL DEFAULT '',
                    line_id TEXT NOT NULL DEFAULT '',
                    entered_at_ns BIGINT NOT NULL DEFAULT 0,
                    tracking_no TEXT NOT NULL DEFAULT '',
                    barcode_outcome TEXT NOT NULL DEFAULT '',
                    route TEXT,
                    fail_closed INTEGER NOT NULL DEFAULT 0,
                    risk_score DOUBLE PRECISION,
                    reason_codes TEXT NOT NULL DEFAULT '',
                    detected_classes TEXT NOT NULL DEFAULT '',
                    max_score DOUBLE PRECISION,
                    detector_error TEXT NOT NULL DEFAULT '',
                    raw_sha256 TEXT NOT NULL DEFAULT '',
                    render_sha256 TEXT NOT NULL DEFAULT '',
                    scan_complete INTEGER,
                    decided_at_ns BIGINT,
                    gate_status TEXT NOT NULL DEFAULT 'pending',
                    review_status TEXT NOT NULL DEFAULT 'none',
                    last_verdict TEXT NOT NULL DEFAULT '',
                    last_seq BIGINT NOT NULL DEFAULT 0)""",
                "CREATE INDEX IF NOT EXISTS journal_parcels_queue ON journal_parcels (centre_id, review_status, entered_at_ns)",
            ]
        )

    # ---- write side -------------------------------------------------------------------------

    def append(self, event: ParcelEvent) -> int:
        """Durably record one event; returns its sequence number once committed."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[ParcelEvent]) -> list[int]:
        """Record several events in one transaction (all or none)."""
        seqs: list[int] = []
        now_ns = time.time_ns()
        with self.db.transaction():
            for event in events:
                kind, payload = encode_event(event)
                rows = self.db.query(
                    "INSERT INTO journal_events (parcel_id, kind, at_ns, recorded_at_ns, payload) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING seq",
                    (event.parcel_id, kind, event.at_ns, now_ns, payload),
                )
                seq = int(rows[0][0])
                self._project(seq, event)
                seqs.append(seq)
        return seqs

    def _update(self, parcel_id: str, seq: int, **columns: SqlValue) -> None:
        self.db.execute(
            "INSERT INTO journal_parcels (parcel_id) VALUES (?) ON CONFLICT (parcel_id) DO NOTHING", (parcel_id,)
        )
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.execute(
            f"UPDATE journal_parcels SET {assignments}, last_seq = ? WHERE parcel_id = ?",
            (*columns.values(), seq, parcel_id),
        )

    def _project(self, seq: int, event: ParcelEvent) -> None:
        pid = event.parcel_id
        if isinstance(event, ParcelEntered):
            self._update(pid, seq, centre_id=event.centre_id, line_id=event.line_id, entered_at_ns=event.at_ns)
        elif isinstance(event, ParcelScanned):
            self._update(
                pid,
                seq,
                raw_sha256=event.raw_sha256,
                render_sha256=event.render_sha256,
                scan_complete=int(event.complete),
            )
        elif isinstance(event, WaybillMatched):
            self._update(pid, seq, tracking_no=event.tracking_no, barcode_outcome=event.outcome.value)
        elif isinstance(event, ParcelDetected):
            if event.detections is None:
                self._update(pid, seq, detector_error=event.error or "no result")
            else:
                labels = sorted(set(event.detections.labels()))
                top = float(event.detections.scores.max()) if len(event.detections) else 0.0
                self._update(pid, seq, detected_classes=_csv(labels), max_score=top, detector_error=event.error)
        elif isinstance(event, ParcelDecided):
            decision = event.decision
            self._update(
                pid,
                seq,
                route=decision.route.value,
                fail_closed=int(decision.fail_closed),
                risk_score=event.assessment.risk_score if event.assessment else None,
                reason_codes=_csv([r.code.value for r in decision.reasons]),
                decided_at_ns=decision.decided_at_ns,
                review_status="pending" if decision.route.diverts else "none",
            )
        elif isinstance(event, GateCommanded):
            self._update(pid, seq, gate_status="commanded")
        elif isinstance(event, GateAcknowledged):
            self._update(pid, seq, gate_status="acknowledged" if event.accepted else "refused")
        elif isinstance(event, DeadlineMissed):
            self._update(pid, seq, gate_status="missed")
        elif isinstance(event, OperatorVerdict):
            self._update(pid, seq, review_status="reviewed", last_verdict=event.kind.value)
        else:  # pragma: no cover - the union is closed; a new event type must get a branch
            raise StorageError(f"no projection for {type(event).__name__}")

    # ---- read side --------------------------------------------------------------------------

    def events_for(self, parcel_id: str) -> list[tuple[int, ParcelEvent]]:
        rows = self.db.query(
            "SELECT seq, kind, payload FROM journal_events WHERE parcel_id = ? ORDER BY seq", (parcel_id,)
        )
        return [(int(seq), decode_event(kind, payload)) for seq, kind, payload in rows]

    def verdicts_for(self, parcel_id: str) -> list[tuple[int, OperatorVerdict]]:
        rows = self.db.query(
            "SELECT seq, kind, payload FROM journal_events WHERE parcel_id = ? AND kind = 'OperatorVerdict' ORDER BY seq",
            (parcel_id,),
        )
        out: list[tuple[int, OperatorVerdict]] = []
        for seq, kind, payload in rows:
            event = decode_event(kind, payload)
            assert isinstance(event, OperatorVerdict)
            out.append((int(seq), event))
        return out

    def event_count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM journal_events")[0][0])

    def parcel(self, parcel_id: str) -> ParcelRecord | None:
        rows = self.db.query(
            f"SELECT {', '.join(_PARCEL_COLUMNS)} FROM journal_parcels WHERE parcel_id = ?", (parcel_id,)
        )
        return _record(rows[0]) if rows else None

    def _where(self, q: ParcelQuery) -> tuple[str, list[SqlValue]]:
        clauses: list[str] = []
        params: list[SqlValue] = []
        if q.centre_id is not None:
            clauses.append("centre_id = ?")
            params.append(q.centre_id)
        if q.line_ids is not None:
            if not q.line_ids:
                return "WHERE 1 = 0", []
            clauses.append(f"line_id IN ({', '.join('?' for _ in q.line_ids)})")
            params.extend(q.line_ids)
        if q.parcel_ids is not None:
            if not q.parcel_ids:
                return "WHERE 1 = 0", []
            clauses.append(f"parcel_id IN ({', '.join('?' for _ in q.parcel_ids)})")
            params.extend(q.parcel_ids)
        if q.review_status is not None:
            clauses.append("review_status = ?")
            params.append(q.review_status)
        if q.class_name is not None:
            clauses.append("detected_classes LIKE ?")
            params.append(f"%,{q.class_name},%")
        if q.route is not None:
            clauses.append("route = ?")
            params.append(q.route.value)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def parcels(self, query: ParcelQuery) -> list[ParcelRecord]:
        where, params = self._where(query)
        order = "DESC" if query.newest_first else "ASC"
        rows = self.db.query(
            f"SELECT {', '.join(_PARCEL_COLUMNS)} FROM journal_parcels {where} "
            f"ORDER BY entered_at_ns {order}, parcel_id {order} LIMIT ? OFFSET ?",
            (*params, query.limit, query.offset),
        )
        return [_record(row) for row in rows]

    def count(self, query: ParcelQuery) -> int:
        where, params = self._where(query)
        return int(self.db.query(f"SELECT COUNT(*) FROM journal_parcels {where}", params)[0][0])

    def close(self) -> None:
        self.db.close()


def _record(row: tuple[object, ...]) -> ParcelRecord:
    values = dict(zip(_PARCEL_COLUMNS, row, strict=True))
    route = values["route"]
    risk = values["risk_score"]
    top = values["max_score"]
    complete = values["scan_complete"]
    decided = values["decided_at_ns"]
    return ParcelRecord(
        parcel_id=str(values["parcel_id"]),
        centre_id=str(values["centre_id"]),
        line_id=str(values["line_id"]),
        entered_at_ns=int(str(values["entered_at_ns"])),
        tracking_no=str(values["tracking_no"]),
        barcode_outcome=str(values["barcode_outcome"]),
        route=Route(str(route)) if route is not None else None,
        fail_closed=bool(values["fail_closed"]),
        risk_score=float(str(risk)) if risk is not None else None,
        reason_codes=_uncsv(str(values["reason_codes"])),
        detected_classes=_uncsv(str(values["detected_classes"])),
        max_score=float(str(top)) if top is not None else None,
        detector_error=str(values["detector_error"]),
        raw_sha256=str(values["raw_sha256"]),
        render_sha256=str(values["render_sha256"]),
        scan_complete=bool(complete) if complete is not None else None,
        decided_at_ns=int(str(decided)) if decided is not None else None,
        gate_status=str(values["gate_status"]),  # type: ignore[arg-type]
        review_status=str(values["review_status"]),  # type: ignore[arg-type]
        last_verdict=str(values["last_verdict"]),
        last_seq=int(str(values["last_seq"])),
    )
