"""The case of a parcel as an operator reviews it, built from the parcel's journal events.

Personal data is masked (the journal stores it masked already; it is masked again here so the
API never depends on how it was stored). TIP cases look like any other case.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from smartscreen.domain.decision import Route
from smartscreen.domain.events import (
    DeadlineMissed,
    GateAcknowledged,
    GateCommanded,
    ParcelDecided,
    ParcelDetected,
    ParcelEntered,
    ParcelEvent,
    ParcelScanned,
    WaybillMatched,
)
from smartscreen.domain.waybill import PersonalData, Waybill
from smartscreen.journal import ParcelRecord
from smartscreen.review.models import TipEvent, VerdictRecord


@dataclass(frozen=True, slots=True)
class DetectionView:
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class ReasonView:
    code: str
    detail: str
    score: float


@dataclass(frozen=True, slots=True)
class DeclaredItemView:
    name: str
    category_code: str
    quantity: int
    value_cny: float


@dataclass(frozen=True, slots=True)
class WaybillView:
    tracking_no: str
    carrier_code: str
    declared_items: tuple[DeclaredItemView, ...]
    declared_weight_g: int | None
    measured_weight_g: int | None
    origin_region_code: str
    dest_region_code: str
    route_label: str
    sender_name: str
    sender_phone: str
    sender_address: str
    recipient_name: str
    recipient_phone: str
    recipient_address: str


@dataclass(frozen=True, slots=True)
class TimingsView:
    entered_at_ns: int
    scanned_at_ns: int | None
    detected_at_ns: int | None
    decided_at_ns: int | None
    gate_at_ns: int | None
    inference_ms: float | None
    decision_latency_ms: float | None  # tunnel entry to decision


@dataclass(frozen=True, slots=True)
class CaseView:
    case_id: str
    centre_id: str
    line_id: str
    tracking_no: str
    barcode_outcome: str
    route: str | None
    fail_closed: bool
    policy_version: str
    risk_score: float | None
    reasons: tuple[ReasonView, ...]
    detections: tuple[DetectionView, ...]
    model_id: str
    detector_error: str
    waybill: WaybillView | None
    gate_status: str
    scan_complete: bool | None
    shape_hw: tuple[int, int] | None
    timings: TimingsView
    review_status: str
    verdicts: tuple[VerdictRecord, ...]
    image_sha256: str


def _masked(pii: PersonalData) -> PersonalData:
    """Mask personal data; phones already masked by the journal (four digits or fewer) are kept as stored."""
    masked = pii.masked()
    keep_sender = sum(c.isdigit() for c in pii.sender_phone) <= 4
    keep_recipient = sum(c.isdigit() for c in pii.recipient_phone) <= 4
    return dataclasses.replace(
        masked,
        sender_phone=pii.sender_phone if keep_sender else masked.sender_phone,
        recipient_phone=pii.recipient_phone if keep_recipient else masked.recipient_phone,
    )


def waybill_view(waybill: Waybill) -> WaybillView:
    pii = _masked(waybill.pii)
    return WaybillView(
        tracking_no=waybill.tracking_no,
        carrier_code=waybill.carrier_code,
        declared_items=tuple(
            DeclaredItemView(i.name, i.category_code, i.quantity, i.value_cny) for i in waybill.declared_items
        ),
        declared_weight_g=waybill.declared_weight_g,
        measured_weight_g=waybill.measured_weight_g,
        origin_region_code=waybill.origin_region_code,
        dest_region_code=waybill.dest_region_code,
        route_label=waybill.route_label,
        sender_name=pii.sender_name,
        sender_phone=pii.sender_phone,
        sender_address=pii.sender_address,
        recipient_name=pii.recipient_name,
        recipient_phone=pii.recipient_phone,
        recipient_address=pii.recipient_address,
    )


def image_sha(record: ParcelRecord) -> str:
    """The blob the review images are rendered from: the raw scan when stored, else the render."""
    return record.raw_sha256 or record.render_sha256


def build_case(record: ParcelRecord, events: list[tuple[int, ParcelEvent]], verdicts: list[VerdictRecord]) -> CaseView:
    waybill: WaybillView | None = None
    detections: tuple[DetectionView, ...] = ()
    reasons: tuple[ReasonView, ...] = ()
    model_id = ""
    policy_version = ""
    shape_hw: tuple[int, int] | None = None
    entered = record.entered_at_ns
    scanned = detected = decided = gate_at = None
    inference_ms: float | None = None
    for _, event in events:
        if isinstance(event, ParcelEntered):
            entered = event.at_ns
        elif isinstance(event, ParcelScanned):
            scanned = event.at_ns
            shape_hw = event.shape_hw
        elif isinstance(event, WaybillMatched):
            waybill = waybill_view(event.waybill) if event.waybill is not None else None
        elif isinstance(event, ParcelDetected):
            detected = event.at_ns
            inference_ms = event.inference_ms
            if event.detections is not None:
                d = event.detections
                model_id = d.model_id
                detections = tuple(
                    DetectionView(label, float(score), *(float(v) for v in box))
                    for label, score, box in zip(d.labels(), d.scores.tolist(), d.xyxy.tolist(), strict=True)
                )
        elif isinstance(event, ParcelDecided):
            decided = event.decision.decided_at_ns
            policy_version = event.decision.policy_version
            reasons = tuple(ReasonView(r.code.value, r.detail, r.score) for r in event.decision.reasons)
        elif isinstance(event, GateCommanded | GateAcknowledged | DeadlineMissed):
            gate_at = event.at_ns
    return CaseView(
        case_id=record.parcel_id,
        centre_id=record.centre_id,
        line_id=record.line_id,
        tracking_no=record.tracking_no,
        barcode_outcome=record.barcode_outcome,
        route=record.route.value if record.route else None,
        fail_closed=record.fail_closed,
        policy_version=policy_version,
        risk_score=record.risk_score,
        reasons=reasons,
        detections=detections,
        model_id=model_id,
        detector_error=record.detector_error,
        waybill=waybill,
        gate_status=record.gate_status,
        scan_complete=record.scan_complete,
        shape_hw=shape_hw,
        timings=TimingsView(
            entered_at_ns=entered,
            scanned_at_ns=scanned,
            detected_at_ns=detected,
            decided_at_ns=decided,
            gate_at_ns=gate_at,
            inference_ms=inference_ms,
            decision_latency_ms=(decided - entered) / 1e6 if decided is not None and entered else None,
        ),
        review_status=record.review_status,
        verdicts=tuple(verdicts),
        image_sha256=image_sha(record),
    )


def tip_shown_entered_ns(tip: TipEvent) -> int:
    """When a TIP case claims its parcel entered: 15-90 s before the projection (fixed per case), so
    its waiting time looks like that of the alarms around it rather than a tell-tale 0 s."""
    offset_s = 15 + int(hashlib.sha256(tip.case_id.encode()).hexdigest()[:8], 16) % 76
    return tip.projected_at_ns - offset_s * 1_000_000_000


def build_tip_case(
    tip: TipEvent,
    source: ParcelRecord | None,
    source_events: list[tuple[int, ParcelEvent]],
) -> CaseView:
    """A TIP case as the operator sees it before judging: the clean parcel's own context (masked
    waybill, scan facts) routed to review, with no detector result, like a waybill-only alarm."""
    shape_hw: tuple[int, int] | None = None
    waybill: WaybillView | None = None
    for _, event in source_events:
        if isinstance(event, ParcelScanned):
            shape_hw = event.shape_hw
        elif isinstance(event, WaybillMatched) and event.waybill is not None:
            waybill = waybill_view(event.waybill)
    entered = tip_shown_entered_ns(tip)
    return CaseView(
        case_id=tip.case_id,
        centre_id=tip.centre_id,
        line_id=tip.line_id,
        tracking_no=source.tracking_no if source else "",
        barcode_outcome=source.barcode_outcome if source else "",
        route=Route.REVIEW.value,
        fail_closed=False,
        policy_version="",
        risk_score=None,
        reasons=(),
        detections=(),
        model_id="",
        detector_error="",
        waybill=waybill,
        gate_status="acknowledged",
        scan_complete=True,
        shape_hw=shape_hw,
        timings=TimingsView(entered, entered + 100_000_000, None, None, None, None, None),
        review_status="pending" if tip.decided_at_ns is None else "reviewed",
        verdicts=(),
        image_sha256=tip.raw_sha256,
    )
