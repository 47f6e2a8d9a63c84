"""Recording operator verdicts (append-only) and the statistics built from them.

A verdict is an ``OperatorVerdict`` event in the journal (who, when, what, boxes) plus a row in
``review_verdicts`` indexing it for statistics, written in one transaction. A correction is a new
verdict whose ``supersedes_id`` names the one it corrects; nothing is ever updated or deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from smartscreen.domain.events import OperatorVerdict, VerdictBox, VerdictKind
from smartscreen.journal import Database, Journal, ParcelRecord
from smartscreen.review.models import LineStats, OperatorStats, VerdictRecord, percentile

MAX_COMMENT_CHARS = 2000


class VerdictConflictError(ValueError):
    """The parcel got a newer verdict than the one the client based its correction on."""


class VerdictService:
    def __init__(self, db: Database, journal: Journal, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._db = db
        self._journal = journal
        self._now = clock_ns

    # ---- views (when an operator first opened a case) ----------------------------------------

    def mark_shown(self, username: str, case_id: str) -> int:
        """Remember when ``username`` first saw ``case_id``; returns that time."""
        now = self._now()
        self._db.execute(
            "INSERT INTO review_views (username, case_id, first_shown_ns) VALUES (?, ?, ?)"
            " ON CONFLICT (username, case_id) DO NOTHING",
            (username, case_id, now),
        )
        return self.first_shown(username, case_id) or now

    def first_shown(self, username: str, case_id: str) -> int | None:
        rows = self._db.query(
            "SELECT first_shown_ns FROM review_views WHERE username = ? AND case_id = ?", (username, case_id)
        )
        return int(rows[0][0]) if rows else None

    # ---- verdicts -----------------------------------------------------------------------------

    def record(
        self,
        parcel: ParcelRecord,
        operator_id: str,
        kind: VerdictKind,
        boxes: tuple[VerdictBox, ...] = (),
        comment: str = "",
        expected_last_seq: int | None = None,
    ) -> VerdictRecord:
        """Append a verdict. ``expected_last_seq`` (the newest verdict the client saw, 0 for none)
        turns a concurrent correction into VerdictConflictError instead of a silent race."""
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment must have at most {MAX_COMMENT_CHARS} characters")
        with self._db.transaction():
            latest = self._db.query("SELECT MAX(seq) FROM review_verdicts WHERE parcel_id = ?", (parcel.parcel_id,))[0][
                0
            ]
            latest_seq = int(latest) if latest is not None else None
            if expected_last_seq is not None and (latest_seq or 0) != expected_last_seq:
                raise VerdictConflictError(
                    f"parcel {parcel.parcel_id} has verdict {latest_seq} newer than {expected_last_seq}; reload the case"
                )
            now = self._now()
            shown = self.first_shown(operator_id, parcel.parcel_id)
            response_ms = (now - shown) / 1e6 if shown is not None else None
            event = OperatorVerdict(
                parcel_id=parcel.parcel_id,
                at_ns=now,
                operator_id=operator_id,
                kind=kind,
                boxes=boxes,
                comment=comment,
                supersedes_id=latest_seq,
            )
            seq = self._journal.append(event)
            self._db.execute(
                "INSERT INTO review_verdicts (seq, parcel_id, centre_id, line_id, operator_id, kind, at_ns, n_boxes,"
                " supersedes_seq, response_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    parcel.parcel_id,
                    parcel.centre_id,
                    parcel.line_id,
                    operator_id,
                    kind.value,
                    now,
                    len(boxes),
                    latest_seq,
                    response_ms,
                ),
            )
        return VerdictRecord(
            seq=seq,
            parcel_id=parcel.parcel_id,
            centre_id=parcel.centre_id,
            line_id=parcel.line_id,
            operator_id=operator_id,
            kind=kind,
            at_ns=now,
            boxes=boxes,
            comment=comment,
            supersedes_seq=latest_seq,
            response_ms=response_ms,
        )

    def history(self, parcel: ParcelRecord) -> list[VerdictRecord]:
        """Every verdict of a parcel, oldest first, straight from the journal."""
        response = {
            int(seq): (float(ms) if ms is not None else None)
            for seq, ms in self._db.query(
                "SELECT seq, response_ms FROM review_verdicts WHERE parcel_id = ?", (parcel.parcel_id,)
            )
        }
        return [
            VerdictRecord(
                seq=seq,
                parcel_id=v.parcel_id,
                centre_id=parcel.centre_id,
                line_id=parcel.line_id,
                operator_id=v.operator_id,
                kind=v.kind,
                at_ns=v.at_ns,
                boxes=v.boxes,
                comment=v.comment,
                supersedes_seq=v.supersedes_id,
                response_ms=response.get(seq),
            )
            for seq, v in self._journal.verdicts_for(parcel.parcel_id)
        ]

    # ---- statistics ---------------------------------------------------------------------------

    def operator_stats(self, centre_id: str, operator_id: str | None = None, since_ns: int = 0) -> list[OperatorStats]:
        sql = (
            "SELECT operator_id, kind, supersedes_seq, response_ms FROM review_verdicts"
            " WHERE centre_id = ? AND at_ns >= ?"
        )
        params: list[str | int] = [centre_id, since_ns]
        if operator_id is not None:
            sql += " AND operator_id = ?"
            params.append(operator_id)
        by_operator: dict[str, list[tuple[str, bool, float | None]]] = {}
        for op, kind, supersedes, ms in self._db.query(sql, params):
            by_operator.setdefault(str(op), []).append(
                (str(kind), supersedes is not None, float(ms) if ms is not None else None)
            )
        out = []
        for op in sorted(by_operator):
            rows = by_operator[op]
            times = [ms for _, _, ms in rows if ms is not None]
            out.append(
                OperatorStats(
                    operator_id=op,
                    verdicts=len(rows),
                    threat_confirmed=sum(k == VerdictKind.THREAT_CONFIRMED for k, _, _ in rows),
                    false_alarm=sum(k == VerdictKind.FALSE_ALARM for k, _, _ in rows),
                    needs_opening=sum(k == VerdictKind.NEEDS_OPENING for k, _, _ in rows),
                    corrections=sum(c for _, c, _ in rows),
                    median_response_ms=percentile(times, 50),
                    p90_response_ms=percentile(times, 90),
                )
            )
        return out

    def line_stats(self, centre_id: str, since_ns: int = 0) -> list[LineStats]:
        parcels: dict[str, dict[str, int]] = {}
        for line_id, status, route, n in self._db.query(
            "SELECT line_id, review_status, route, COUNT(*) FROM journal_parcels"
            " WHERE centre_id = ? AND entered_at_ns >= ? GROUP BY line_id, review_status, route",
            (centre_id, since_ns),
        ):
            counts = parcels.setdefault(str(line_id), {"parcels": 0, "alarms": 0, "pending": 0, "reviewed": 0})
            counts["parcels"] += int(n)
            if route is not None and route != "clear":
                counts["alarms"] += int(n)
            if status == "pending":
                counts["pending"] += int(n)
            elif status == "reviewed":
                counts["reviewed"] += int(n)
        verdicts: dict[tuple[str, str], int] = {}
        # the latest verdict of each parcel counts (a correction replaces the judgement, not the record)
        for line_id, kind, n in self._db.query(
            "SELECT v.line_id, v.kind, COUNT(*) FROM review_verdicts v WHERE v.centre_id = ? AND v.at_ns >= ?"
            " AND v.seq = (SELECT MAX(w.seq) FROM review_verdicts w WHERE w.parcel_id = v.parcel_id)"
            " GROUP BY v.line_id, v.kind",
            (centre_id, since_ns),
        ):
            verdicts[(str(line_id), str(kind))] = int(n)
        lines = sorted(set(parcels) | {line for line, _ in verdicts})
        return [
            LineStats(
                line_id=line,
                parcels=parcels.get(line, {}).get("parcels", 0),
                alarms=parcels.get(line, {}).get("alarms", 0),
                pending_review=parcels.get(line, {}).get("pending", 0),
                reviewed=parcels.get(line, {}).get("reviewed", 0),
                threat_confirmed=verdicts.get((line, VerdictKind.THREAT_CONFIRMED.value), 0),
                false_alarm=verdicts.get((line, VerdictKind.FALSE_ALARM.value), 0),
                needs_opening=verdicts.get((line, VerdictKind.NEEDS_OPENING.value), 0),
            )
            for line in lines
        ]
