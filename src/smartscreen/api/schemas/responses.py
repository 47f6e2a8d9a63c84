"""Response bodies (built from the review service's dataclasses; never from database rows)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from smartscreen.domain.events import VerdictKind
from smartscreen.review.models import Role, TipOutcome


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class AccountOut(_Out):
    username: str
    centre_id: str
    role: Role
    display_name: str
    disabled: bool
    created_at_ns: int


class TokenOut(_Out):
    token: str
    token_type: str = "bearer"
    expires_at_ns: int
    account: AccountOut


class QueueItemOut(_Out):
    case_id: str
    line_id: str
    entered_at_ns: int
    waited_s: float = Field(description="Seconds since the parcel entered the tunnel.")
    route: str | None
    risk_score: float | None
    reason_codes: tuple[str, ...]
    detected_classes: tuple[str, ...]
    max_score: float | None
    review_status: str
    last_verdict: str


class QueuePageOut(_Out):
    items: list[QueueItemOut]
    total: int
    offset: int
    limit: int
    server_time_ns: int


class BoxOut(_Out):
    class_name: str
    x1: float
    y1: float
    x2: float
    y2: float


class VerdictOut(_Out):
    seq: int = Field(description="Journal sequence number: the verdict's permanent id.")
    parcel_id: str
    operator_id: str
    kind: VerdictKind
    at_ns: int
    boxes: tuple[BoxOut, ...]
    comment: str
    supersedes_seq: int | None
    response_ms: float | None


class DetectionOut(_Out):
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


class ReasonOut(_Out):
    code: str
    detail: str
    score: float


class DeclaredItemOut(_Out):
    name: str
    category_code: str
    quantity: int
    value_cny: float


class WaybillOut(_Out):
    """Personal data masked: first character of names, last four digits of phones, region of addresses."""

    tracking_no: str
    carrier_code: str
    declared_items: tuple[DeclaredItemOut, ...]
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


class TimingsOut(_Out):
    entered_at_ns: int
    scanned_at_ns: int | None
    detected_at_ns: int | None
    decided_at_ns: int | None
    gate_at_ns: int | None
    inference_ms: float | None
    decision_latency_ms: float | None


class CaseOut(_Out):
    case_id: str
    centre_id: str
    line_id: str
    tracking_no: str
    barcode_outcome: str
    route: str | None
    fail_closed: bool
    policy_version: str
    risk_score: float | None
    reasons: tuple[ReasonOut, ...]
    detections: tuple[DetectionOut, ...]
    model_id: str
    detector_error: str
    waybill: WaybillOut | None
    gate_status: str
    scan_complete: bool | None
    shape_hw: tuple[int, int] | None
    timings: TimingsOut
    review_status: str
    verdicts: tuple[VerdictOut, ...]
    waited_s: float
    images: dict[str, str] = Field(description="PNG URL per layer.")


class TipRevealOut(_Out):
    """Shown to the operator after the verdict on a TIP case."""

    was_test: bool = True
    threat_class: str
    box_xyxy: tuple[float, float, float, float]
    outcome: TipOutcome
    response_ms: float | None
    iou: float | None


class VerdictResultOut(_Out):
    verdict: VerdictOut | None
    tip: TipRevealOut | None
    message: str


class OperatorStatsOut(_Out):
    operator_id: str
    verdicts: int
    threat_confirmed: int
    false_alarm: int
    needs_opening: int
    corrections: int
    median_response_ms: float | None
    p90_response_ms: float | None


class LineStatsOut(_Out):
    line_id: str
    parcels: int
    alarms: int
    pending_review: int
    reviewed: int
    threat_confirmed: int
    false_alarm: int
    needs_opening: int


class TipSettingsOut(_Out):
    username: str
    enabled: bool
    probability: float
    updated_by: str
    updated_at_ns: int


class TipCaseOut(_Out):
    case_id: str
    operator_id: str
    threat_class: str
    source_parcel_id: str
    projected_at_ns: int


class TipReportRowOut(_Out):
    operator_id: str
    enabled: bool
    probability: float
    projected: int
    hits: int
    misses: int
    pending: int
    detection_rate: float | None
    median_response_ms: float | None


class HealthOut(_Out):
    status: str
    journal: str
    version: str
