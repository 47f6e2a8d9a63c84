"""Threat image projection (TIP): fictional threats inserted into real clean scans to test operators.

Rules (shared/reference/dicos-and-tip.md, part B):

- a supervisor enables TIP per operator, with a per-case probability;
- after a verdict on a real parcel, with that probability a TIP case is prepared for the
  operator: a recent CLEAR parcel of the centre with a threat projected **in material space**
  by the imaging simulator (``smartscreen.imaging.project_threat``); it joins the operator's
  queue like any parcel;
- the operator's verdict on it is recorded as HIT (threat confirmed / needs opening) or MISS
  (false alarm) with the response time; the operator is told afterwards that it was a test;
- nothing of this touches the journal: the real parcel's events and decision stay as they were.
"""

from __future__ import annotations

import logging
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartscreen.domain.decision import Route
from smartscreen.domain.events import VerdictBox, VerdictKind
from smartscreen.domain.taxonomy import PROHIBITED_CLASS_NAMES
from smartscreen.errors import ImagingError
from smartscreen.imaging import project_threat, read_raw_scan, write_raw_scan
from smartscreen.journal import Database, FsImageStore, Journal, ParcelQuery, ParcelRecord
from smartscreen.review.models import Account, TipEvent, TipOutcome, TipReportRow, TipSettings, percentile
from smartscreen.review.scans import RAW_KEYS, blob_keys

logger = logging.getLogger(__name__)

BoxXyxy = tuple[float, float, float, float]
# stored raw scan file, threat class, rng -> (raw scan bytes with the threat, its box in scan pixels)
Projector = Callable[[Path, str, random.Random], tuple[bytes, BoxXyxy]]

TIP_CLASSES: tuple[str, ...] = tuple(sorted(PROHIBITED_CLASS_NAMES))
_COLUMNS = (
    "case_id, operator_id, centre_id, line_id, source_parcel_id, threat_class, x1, y1, x2, y2, raw_sha256,"
    " projected_at_ns, outcome, verdict_kind, decided_at_ns, response_ms, iou"
)


def project_with_imaging(raw_path: Path, threat_class: str, rng: random.Random) -> tuple[bytes, BoxXyxy]:
    """Default projector: the imaging simulator's physical insertion (adds line integrals, re-forms counts).

    The result is a new raw scan with the original's calibration references and metadata, so it
    renders through the same imaging chain as a real parcel.
    """
    raw = read_raw_scan(raw_path)
    generator = np.random.default_rng(rng.getrandbits(64))
    high, low, box = project_threat(
        raw.high, raw.low, raw.calibration, threat_class, generator, params=raw.scanner_params()
    )
    with tempfile.TemporaryDirectory(prefix="smartscreen-tip-") as tmp:
        target = Path(tmp) / "tip.npz"
        write_raw_scan(target, high, low, raw.calibration, raw.meta)
        data = target.read_bytes()
    return data, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def iou(a: BoxXyxy, b: BoxXyxy) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _event(row: tuple[object, ...]) -> TipEvent:
    (case_id, op, centre, line, source, cls, x1, y1, x2, y2, sha, projected, outcome, kind, decided, ms, overlap) = row
    return TipEvent(
        case_id=str(case_id),
        operator_id=str(op),
        centre_id=str(centre),
        line_id=str(line),
        source_parcel_id=str(source),
        threat_class=str(cls),
        box_xyxy=(float(str(x1)), float(str(y1)), float(str(x2)), float(str(y2))),
        raw_sha256=str(sha),
        projected_at_ns=int(str(projected)),
        outcome=TipOutcome(str(outcome)),
        verdict_kind=VerdictKind(str(kind)) if kind is not None else None,
        decided_at_ns=int(str(decided)) if decided is not None else None,
        response_ms=float(str(ms)) if ms is not None else None,
        iou=float(str(overlap)) if overlap is not None else None,
    )


@dataclass(frozen=True, slots=True)
class TipJudgement:
    event: TipEvent
    operator_box_iou: float | None


class TipService:
    def __init__(
        self,
        db: Database,
        journal: Journal,
        images: FsImageStore,
        *,
        projector: Projector = project_with_imaging,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        source_window: int = 50,
    ) -> None:
        self._db = db
        self._journal = journal
        self._images = images
        self._project = projector
        self._now = clock_ns
        self._rng = rng or random.Random(secrets.randbits(64))
        self._window = source_window

    # ---- settings -----------------------------------------------------------------------------

    def settings(self, username: str) -> TipSettings:
        rows = self._db.query(
            "SELECT username, enabled, probability, updated_by, updated_at_ns FROM review_tip_settings"
            " WHERE username = ?",
            (username,),
        )
        if not rows:
            return TipSettings(username, False, 0.0, "", 0)
        u, enabled, p, by, at = rows[0]
        return TipSettings(str(u), bool(enabled), float(p), str(by), int(at))

    def configure(self, username: str, *, enabled: bool, probability: float, by: str) -> TipSettings:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must lie in [0, 1], got {probability}")
        now = self._now()
        self._db.execute(
            "INSERT INTO review_tip_settings (username, enabled, probability, updated_by, updated_at_ns)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET enabled = excluded.enabled,"
            " probability = excluded.probability, updated_by = excluded.updated_by,"
            " updated_at_ns = excluded.updated_at_ns",
            (username, int(enabled), probability, by, now),
        )
        logger.info("TIP for %s set to enabled=%s p=%.3f by %s", username, enabled, probability, by)
        return TipSettings(username, enabled, probability, by, now)

    # ---- projection ---------------------------------------------------------------------------

    def after_real_verdict(self, operator: Account) -> TipEvent | None:
        """Roll the operator's TIP dice; on a hit prepare a TIP case (at most one pending at a time)."""
        settings = self.settings(operator.username)
        if not settings.enabled or self._rng.random() >= settings.probability:
            return None
        if self.pending_for(operator.username):
            return None
        return self.project_for(operator)

    def project_for(self, operator: Account, threat_class: str | None = None) -> TipEvent | None:
        """Prepare a TIP case for the operator now; None when the centre has no clean scan to use."""
        sources = [
            r
            for r in self._journal.parcels(
                ParcelQuery(centre_id=operator.centre_id, route=Route.CLEAR, newest_first=True, limit=self._window)
            )
            if r.raw_sha256
        ]
        self._rng.shuffle(sources)
        cls = threat_class or self._rng.choice(TIP_CLASSES)
        for source in sources:
            try:
                raw = self._images.get(source.raw_sha256)
            except KeyError:
                logger.warning("TIP source %s: raw scan %s missing", source.parcel_id, source.raw_sha256[:12])
                continue
            if not all(k in blob_keys(raw) for k in RAW_KEYS):
                continue
            try:
                tip_raw, box = self._project(self._images.path_for(source.raw_sha256), cls, self._rng)
            except (ValueError, ImagingError) as e:  # e.g. the threat fell outside a small parcel: try another
                logger.warning("TIP projection into %s failed: %s", source.parcel_id, e)
                continue
            sha = self._images.put(tip_raw)
            event = TipEvent(
                case_id=self._new_case_id(source),
                operator_id=operator.username,
                centre_id=operator.centre_id,
                line_id=source.line_id,
                source_parcel_id=source.parcel_id,
                threat_class=cls,
                box_xyxy=box,
                raw_sha256=sha,
                projected_at_ns=self._now(),
                outcome=TipOutcome.PENDING,
                verdict_kind=None,
                decided_at_ns=None,
                response_ms=None,
                iou=None,
            )
            self._db.execute(
                f"INSERT INTO review_tip_events ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (
                    event.case_id,
                    event.operator_id,
                    event.centre_id,
                    event.line_id,
                    event.source_parcel_id,
                    event.threat_class,
                    *event.box_xyxy,
                    event.raw_sha256,
                    event.projected_at_ns,
                    event.outcome.value,
                    None,
                    None,
                    None,
                    None,
                ),
            )
            logger.info("TIP %s prepared for %s (%s on %s)", event.case_id, operator.username, cls, source.parcel_id)
            return event
        logger.warning(
            "TIP for %s: no clean raw scan in centre %s to project into", operator.username, operator.centre_id
        )
        return None

    def _new_case_id(self, source: ParcelRecord) -> str:
        """An id shaped like the line's parcel ids, unused by any parcel or TIP case."""
        prefix = source.parcel_id.rstrip("0123456789") or f"{source.line_id}-"
        digits = max(len(source.parcel_id) - len(prefix), 6)
        while True:
            candidate = f"{prefix}{self._rng.randrange(10 ** (digits - 1), 10**digits)}"
            if self._journal.parcel(candidate) is None and self.event(candidate) is None:
                return candidate

    # ---- cases and judgements -----------------------------------------------------------------

    def event(self, case_id: str) -> TipEvent | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM review_tip_events WHERE case_id = ?", (case_id,))
        return _event(rows[0]) if rows else None

    def pending_for(self, username: str) -> list[TipEvent]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM review_tip_events WHERE operator_id = ? AND outcome = ? ORDER BY projected_at_ns",
            (username, TipOutcome.PENDING.value),
        )
        return [_event(r) for r in rows]

    def judge(
        self, event: TipEvent, kind: VerdictKind, boxes: tuple[VerdictBox, ...], shown_at_ns: int | None
    ) -> TipEvent:
        """Record the operator's verdict on a TIP case; a TIP is judged once."""
        now = self._now()
        outcome = TipOutcome.MISS if kind is VerdictKind.FALSE_ALARM else TipOutcome.HIT
        start = shown_at_ns if shown_at_ns is not None else event.projected_at_ns
        response_ms = max(0.0, (now - start) / 1e6)
        overlap = max((iou(event.box_xyxy, (b.x1, b.y1, b.x2, b.y2)) for b in boxes), default=None)
        changed = self._db.execute(
            "UPDATE review_tip_events SET outcome = ?, verdict_kind = ?, decided_at_ns = ?, response_ms = ?, iou = ?"
            " WHERE case_id = ? AND outcome = ?",
            (outcome.value, kind.value, now, response_ms, overlap, event.case_id, TipOutcome.PENDING.value),
        )
        if changed != 1:
            raise ValueError(f"TIP case {event.case_id} was already judged")
        judged = self.event(event.case_id)
        assert judged is not None
        return judged

    def report(self, centre_id: str, operators: list[str]) -> list[TipReportRow]:
        rows = self._db.query(
            "SELECT operator_id, outcome, response_ms FROM review_tip_events WHERE centre_id = ?", (centre_id,)
        )
        out = []
        for op in sorted(set(operators) | {str(r[0]) for r in rows}):
            mine = [(str(o), float(ms) if ms is not None else None) for u, o, ms in rows if u == op]
            hits = sum(o == TipOutcome.HIT.value for o, _ in mine)
            misses = sum(o == TipOutcome.MISS.value for o, _ in mine)
            settings = self.settings(op)
            out.append(
                TipReportRow(
                    operator_id=op,
                    enabled=settings.enabled,
                    probability=settings.probability,
                    projected=len(mine),
                    hits=hits,
                    misses=misses,
                    pending=len(mine) - hits - misses,
                    detection_rate=hits / (hits + misses) if hits + misses else None,
                    median_response_ms=percentile(
                        [ms for o, ms in mine if o == TipOutcome.HIT.value and ms is not None], 50
                    ),
                )
            )
        return out
