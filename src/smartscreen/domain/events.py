"""Events in a parcel's life. Each is a fact, appended to the audit journal, never edited."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smartscreen.domain.decision import Decision, RiskAssessment, Route
from smartscreen.domain.detections import Detections
from smartscreen.domain.waybill import BarcodeMatch, Waybill


@dataclass(frozen=True, slots=True)
class ParcelEntered:
    """The leading edge crossed the tunnel's entry photo-eye."""

    parcel_id: str
    centre_id: str
    line_id: str
    at_ns: int
    encoder_counts: int
    belt_position_mm: float


@dataclass(frozen=True, slots=True)
class ParcelScanned:
    """The parcel's scan was assembled (and stored by content hash)."""

    parcel_id: str
    line_id: str
    at_ns: int
    shape_hw: tuple[int, int]
    complete: bool
    n_missing_lines: int
    truncated: bool
    raw_sha256: str
    render_sha256: str


@dataclass(frozen=True, slots=True)
class WaybillMatched:
    """Outcome of associating barcode reads and looking the waybill up."""

    parcel_id: str
    at_ns: int
    outcome: BarcodeMatch
    tracking_no: str
    found: bool
    waybill: Waybill | None = None


@dataclass(frozen=True, slots=True)
class ParcelDetected:
    """The detector's result for the parcel (or the error that prevented one)."""

    parcel_id: str
    at_ns: int
    detections: Detections | None
    error: str = ""
    inference_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ParcelDecided:
    """The risk policy (or a fault) chose a route."""

    parcel_id: str
    at_ns: int
    assessment: RiskAssessment | None
    decision: Decision


@dataclass(frozen=True, slots=True)
class GateCommanded:
    """A route was sent to the reject gate."""

    parcel_id: str
    at_ns: int
    route: Route
    sequence: int
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class GateAcknowledged:
    """The gate confirmed (or refused) a command."""

    parcel_id: str
    at_ns: int
    sequence: int
    accepted: bool
    route: Route


@dataclass(frozen=True, slots=True)
class DeadlineMissed:
    """A decision or acknowledgement did not happen in time; the parcel is diverted."""

    parcel_id: str
    at_ns: int
    stage: str
    late_by_ms: float


class VerdictKind(StrEnum):
    THREAT_CONFIRMED = "threat_confirmed"
    FALSE_ALARM = "false_alarm"
    NEEDS_OPENING = "needs_opening"


@dataclass(frozen=True, slots=True)
class VerdictBox:
    """A box an operator confirmed, corrected or added, in scan pixels."""

    class_name: str
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise ValueError("a verdict box needs x2 > x1 and y2 > y1")


@dataclass(frozen=True, slots=True)
class OperatorVerdict:
    """An operator's judgement of a parcel. A correction is a new verdict, never an edit."""

    parcel_id: str
    at_ns: int
    operator_id: str
    kind: VerdictKind
    boxes: tuple[VerdictBox, ...] = ()
    comment: str = ""
    supersedes_id: int | None = None


ParcelEvent = (
    ParcelEntered
    | ParcelScanned
    | WaybillMatched
    | ParcelDetected
    | ParcelDecided
    | GateCommanded
    | GateAcknowledged
    | DeadlineMissed
    | OperatorVerdict
)
