"""The review service: what the API calls. Access rules live here, HTTP lives in ``smartscreen.api``.

Visibility: an account sees the parcels of its own centre only; a TIP case is visible only to
the operator it was prepared for. Anything not visible is reported as not found, so ids of
other centres cannot be probed.
"""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from smartscreen.domain.events import (
    ParcelDetected,
    ParcelScanned,
    VerdictBox,
    VerdictKind,
    WaybillMatched,
)
from smartscreen.domain.render import RenderedScan
from smartscreen.errors import ImagingError
from smartscreen.journal import Database, FsImageStore, Journal, ParcelQuery, ParcelRecord
from smartscreen.review.accounts import AccountService
from smartscreen.review.cases import CaseView, build_case, build_tip_case, image_sha, tip_shown_entered_ns
from smartscreen.review.dicos import DicosParcel, DicosScan, DicosThreat, export_parcel
from smartscreen.review.models import Account, Role, TipEvent, VerdictRecord
from smartscreen.review.render import BoxSource, DrawBox, Layer, encode_png
from smartscreen.review.scans import RAW_KEYS, RawRenderer, ScanLoader, blob_keys, render_raw_file
from smartscreen.review.store import create_review_tables
from smartscreen.review.tip import Projector, TipService, project_with_imaging
from smartscreen.review.verdicts import VerdictService

logger = logging.getLogger(__name__)

StatusFilter = Literal["pending", "reviewed", "all"]
PNG_CACHE_BYTES = 128 * 1024 * 1024  # encoded PNGs kept for repeat views and layer toggles


@dataclass(frozen=True, slots=True)
class ResolvedCase:
    """A case id resolved for one account: a real parcel, or a TIP case of that operator."""

    case_id: str
    record: ParcelRecord | None
    tip: TipEvent | None

    @property
    def image_sha256(self) -> str:
        if self.tip is not None:
            return self.tip.raw_sha256
        assert self.record is not None
        return image_sha(self.record)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    case_id: str
    line_id: str
    entered_at_ns: int
    route: str | None
    risk_score: float | None
    reason_codes: tuple[str, ...]
    detected_classes: tuple[str, ...]
    max_score: float | None
    review_status: str
    last_verdict: str


@dataclass(frozen=True, slots=True)
class VerdictOutcome:
    verdict: VerdictRecord | None  # None for a TIP case: nothing goes to the journal
    tip: TipEvent | None  # the judged TIP event when the case was a test


class ReviewService:
    def __init__(
        self,
        db: Database,
        images: FsImageStore,
        *,
        token_ttl_s: int = 12 * 3600,
        clock_ns: Callable[[], int] = time.time_ns,
        projector: Projector = project_with_imaging,
        raw_renderer: RawRenderer = render_raw_file,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.journal = Journal(db)
        create_review_tables(db)
        self.images = images
        self.now_ns = clock_ns
        self.accounts = AccountService(db, token_ttl_s=token_ttl_s, clock_ns=clock_ns)
        self.verdicts = VerdictService(db, self.journal, clock_ns=clock_ns)
        self.tip = TipService(db, self.journal, images, projector=projector, clock_ns=clock_ns, rng=rng)
        self.scans = ScanLoader(images, raw_renderer=raw_renderer)
        self._png_cache: OrderedDict[str, bytes] = OrderedDict()
        self._png_lock = threading.Lock()
        self._png_bytes = 0

    @classmethod
    def open(cls, journal_url: str, image_dir: Path, **options: object) -> ReviewService:
        return cls(Database.open(journal_url), FsImageStore(image_dir), **options)  # type: ignore[arg-type]

    def close(self) -> None:
        self.db.close()

    # ---- visibility -----------------------------------------------------------------------------

    def resolve(self, account: Account, case_id: str) -> ResolvedCase | None:
        record = self.journal.parcel(case_id)
        if record is not None:
            return ResolvedCase(case_id, record, None) if record.centre_id == account.centre_id else None
        tip = self.tip.event(case_id)
        if tip is not None and tip.operator_id == account.username and tip.centre_id == account.centre_id:
            return ResolvedCase(case_id, None, tip)
        return None

    # ---- queue ----------------------------------------------------------------------------------

    def queue(
        self,
        account: Account,
        *,
        line_ids: tuple[str, ...] | None,
        class_name: str | None,
        status: StatusFilter,
        offset: int,
        limit: int,
    ) -> tuple[list[QueueEntry], int]:
        """A page of the account's queue (oldest first) and the total number of matching parcels.

        Pending TIP cases of the operator lead the first page of the pending queue.
        """
        query = ParcelQuery(
            centre_id=account.centre_id,
            line_ids=line_ids,
            review_status=None if status == "all" else status,
            class_name=class_name,
            offset=offset,
            limit=limit,
        )
        entries: list[QueueEntry] = []
        tips = self.tip.pending_for(account.username) if status == "pending" and class_name is None else []
        tips = [t for t in tips if line_ids is None or t.line_id in line_ids]
        if offset == 0:
            entries.extend(
                QueueEntry(t.case_id, t.line_id, tip_shown_entered_ns(t), "review", None, (), (), None, "pending", "")
                for t in tips[:limit]
            )
        for r in self.journal.parcels(query):
            if len(entries) >= limit:
                break
            entries.append(
                QueueEntry(
                    case_id=r.parcel_id,
                    line_id=r.line_id,
                    entered_at_ns=r.entered_at_ns,
                    route=r.route.value if r.route else None,
                    risk_score=r.risk_score,
                    reason_codes=r.reason_codes,
                    detected_classes=r.detected_classes,
                    max_score=r.max_score,
                    review_status=r.review_status,
                    last_verdict=r.last_verdict,
                )
            )
        return entries, self.journal.count(query) + len(tips)

    # ---- case -------------------------------------------------------------------------------------

    def case(self, account: Account, resolved: ResolvedCase) -> CaseView:
        """The case, remembering when this account first opened it (for response times)."""
        self.verdicts.mark_shown(account.username, resolved.case_id)
        if resolved.tip is not None:
            source = self.journal.parcel(resolved.tip.source_parcel_id)
            events = self.journal.events_for(resolved.tip.source_parcel_id) if source is not None else []
            return build_tip_case(resolved.tip, source, events)
        assert resolved.record is not None
        return build_case(
            resolved.record, self.journal.events_for(resolved.case_id), self.verdicts.history(resolved.record)
        )

    def verdict_history(self, resolved: ResolvedCase) -> list[VerdictRecord]:
        return self.verdicts.history(resolved.record) if resolved.record is not None else []

    def submit_verdict(
        self,
        account: Account,
        resolved: ResolvedCase,
        kind: VerdictKind,
        boxes: tuple[VerdictBox, ...],
        comment: str,
        expected_last_seq: int | None,
    ) -> VerdictOutcome:
        if resolved.tip is not None:
            shown = self.verdicts.first_shown(account.username, resolved.case_id)
            return VerdictOutcome(None, self.tip.judge(resolved.tip, kind, boxes, shown))
        assert resolved.record is not None
        record = self.verdicts.record(resolved.record, account.username, kind, boxes, comment, expected_last_seq)
        if account.role is Role.OPERATOR:
            try:
                self.tip.after_real_verdict(account)
            except Exception:  # a TIP failure must never cost a real verdict; it is logged and the verdict stands
                logger.exception("TIP projection for %s failed", account.username)
        return VerdictOutcome(record, None)

    # ---- images -----------------------------------------------------------------------------------

    def scan(self, resolved: ResolvedCase) -> RenderedScan:
        """The rendered scan; a raw scan that cannot be rendered falls back to the line's stored render."""
        try:
            return self.scans.load(resolved.image_sha256)
        except ImagingError as e:
            record = resolved.record
            if record is None or not record.render_sha256 or record.render_sha256 == resolved.image_sha256:
                raise
            logger.warning("parcel %s: raw scan not renderable (%s); showing the line's render", record.parcel_id, e)
            return self.scans.load(record.render_sha256)

    def png(self, resolved: ResolvedCase, layer: Layer, draw_boxes: bool, cache_key: str) -> bytes:
        """PNG of a layer; encoded images are kept in an LRU (128 MiB) under ``cache_key`` (the response's ETag)."""
        with self._png_lock:
            hit = self._png_cache.get(cache_key)
            if hit is not None:
                self._png_cache.move_to_end(cache_key)
                return hit
        data = encode_png(self.scan(resolved), layer, self.boxes(resolved) if draw_boxes else ())
        with self._png_lock:
            if cache_key in self._png_cache:
                return data
            self._png_cache[cache_key] = data
            self._png_bytes += len(data)
            while self._png_bytes > PNG_CACHE_BYTES and len(self._png_cache) > 1:
                _, dropped = self._png_cache.popitem(last=False)
                self._png_bytes -= len(dropped)
        return data

    def boxes(self, resolved: ResolvedCase) -> tuple[DrawBox, ...]:
        """Detector boxes and the latest verdict's boxes (none for a TIP case: finding it is the test)."""
        if resolved.record is None:
            return ()
        out: list[DrawBox] = []
        for _, event in self.journal.events_for(resolved.case_id):
            if isinstance(event, ParcelDetected) and event.detections is not None:
                d = event.detections
                out = [
                    DrawBox(x1, y1, x2, y2, label, float(score), BoxSource.DETECTOR)
                    for label, score, (x1, y1, x2, y2) in zip(
                        d.labels(), d.scores.tolist(), d.xyxy.tolist(), strict=True
                    )
                ]
        history = self.verdicts.history(resolved.record)
        if history:
            out.extend(
                DrawBox(b.x1, b.y1, b.x2, b.y2, b.class_name, None, BoxSource.OPERATOR) for b in history[-1].boxes
            )
        return tuple(out)

    # ---- DICOS ------------------------------------------------------------------------------------

    def dicos_zip(self, resolved: ResolvedCase) -> bytes:
        """A zip of the parcel's DICOS files (DX high, DX low, machine TDR, operator TDR)."""
        if resolved.record is None:
            raise KeyError(resolved.case_id)
        record = resolved.record
        scan = self._dicos_scan(resolved)
        threats: tuple[DicosThreat, ...] = ()
        model_id, inference_ms, carrier, scanned_at = "unknown", 0.0, "", record.entered_at_ns
        for _, event in self.journal.events_for(record.parcel_id):
            if isinstance(event, ParcelDetected) and event.detections is not None:
                d = event.detections
                model_id, inference_ms = d.model_id, event.inference_ms
                threats = tuple(
                    DicosThreat(label, x1, y1, x2, y2, float(score))
                    for label, score, (x1, y1, x2, y2) in zip(
                        d.labels(), d.scores.tolist(), d.xyxy.tolist(), strict=True
                    )
                )
            elif isinstance(event, WaybillMatched) and event.waybill is not None:
                carrier = event.waybill.carrier_code
            elif isinstance(event, ParcelScanned):
                scanned_at = event.at_ns
        history = self.verdicts.history(record)
        last = history[-1] if history else None
        parcel = DicosParcel(
            parcel_id=record.parcel_id,
            centre_id=record.centre_id,
            line_id=record.line_id,
            tracking_no=record.tracking_no,
            carrier_code=carrier,
            scanned_at_ns=scanned_at,
            decided_at_ns=record.decided_at_ns,
            alarm=bool(record.route is not None and record.route.diverts),
            model_id=model_id,
            machine_threats=threats,
            inference_ms=inference_ms,
            operator_id=last.operator_id if last else None,
            operator_verdict=last.kind.value if last else None,
            operator_threats=tuple(DicosThreat(b.class_name, b.x1, b.y1, b.x2, b.y2, 1.0) for b in last.boxes)
            if last
            else (),
            operator_at_ns=last.at_ns if last else None,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in export_parcel(parcel, scan).items():
                archive.writestr(f"{record.parcel_id}/{name}", data)
        return buf.getvalue()

    def _dicos_scan(self, resolved: ResolvedCase) -> DicosScan:
        data = self.images.get(resolved.image_sha256)
        if all(k in blob_keys(data) for k in RAW_KEYS):
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                high = np.asarray(npz["high"], dtype=np.uint16)
                low = np.asarray(npz["low"], dtype=np.uint16)
                meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
        else:  # only a rendered scan is stored: export its transmission as 16-bit intensities
            rendered = self.scans.load(resolved.image_sha256)
            high = np.asarray(np.exp(-rendered.attenuation_high) * 65535.0, dtype=np.uint16)
            low = np.asarray(np.exp(-rendered.attenuation_low) * 65535.0, dtype=np.uint16)
            meta = {}
        return DicosScan(
            high=high,
            low=low,
            kvp=float(meta.get("kvp", 140.0)),
            tube_current_ua=float(meta.get("tube_current_ua", meta.get("tube_current_ma", 1.0) * 1000.0)),
            belt_speed_mm_s=float(meta.get("belt_speed_mm_s", 0.0)),
            line_pitch_mm=float(meta.get("line_pitch_mm", 1.6)),
            channel_pitch_mm=float(meta.get("channel_pitch_mm", 1.6)),
            scanner_id=str(meta.get("scanner_id", resolved.record.line_id if resolved.record else "")),
        )
