"""Risk assessment and the decision sent to the reject gate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Route(StrEnum):
    """Where the sorter sends a parcel. There is no default: every path names one."""

    CLEAR = "clear"
    REVIEW = "review"
    REJECT = "reject"

    @property
    def diverts(self) -> bool:
        """True when the gate must divert the parcel out of the main flow."""
        return self is not Route.CLEAR


class ReasonCode(StrEnum):
    """Why a parcel got its route. Stable values: stored in the journal and shown in the API."""

    PROHIBITED_ITEM = "prohibited_item"
    RESTRICTED_ITEM = "restricted_item"
    DECLARED_MISMATCH = "declared_mismatch"
    WEIGHT_MISMATCH = "weight_mismatch"
    SENDER_RISK = "sender_risk"
    ROUTE_RISK = "route_risk"
    UNKNOWN_WAYBILL = "unknown_waybill"
    NO_READ = "no_read"
    MULTI_READ = "multi_read"
    BARCODE_MISMATCH = "barcode_mismatch"
    INCOMPLETE_SCAN = "incomplete_scan"
    IMPENETRABLE_REGION = "impenetrable_region"
    DETECTOR_ERROR = "detector_error"
    WAYBILL_SERVICE_ERROR = "waybill_service_error"
    DEADLINE_MISSED = "deadline_missed"
    GATE_LINK_DOWN = "gate_link_down"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code with a human-readable detail (never personal data)."""

    code: ReasonCode
    detail: str
    score: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"reason score must lie in [0, 1], got {self.score}")


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The fused risk of one parcel: an overall score in [0, 1] and the reasons behind it."""

    parcel_id: str
    risk_score: float
    reasons: tuple[Reason, ...]
    policy_version: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.risk_score <= 1.0:
            raise ValueError(f"risk_score must lie in [0, 1], got {self.risk_score}")

    @property
    def reason_codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)


@dataclass(frozen=True, slots=True)
class Decision:
    """The route chosen for a parcel, why, and under which policy version.

    ``fail_closed`` marks decisions forced by a fault (late, missing or errored
    stage) rather than by the policy's judgement of the parcel.
    """

    parcel_id: str
    route: Route
    reasons: tuple[Reason, ...]
    policy_version: str
    decided_at_ns: int
    fail_closed: bool = False

    def __post_init__(self) -> None:
        if self.route is Route.CLEAR and self.fail_closed:
            raise ValueError("a fail-closed decision can never clear a parcel")
        if self.route is not Route.CLEAR and not self.reasons:
            raise ValueError(f"a {self.route.value} decision needs at least one reason")

    @classmethod
    def fail_closed_reject(
        cls, parcel_id: str, code: ReasonCode, detail: str, policy_version: str, at_ns: int
    ) -> Decision:
        """The one constructor for fault-forced diverts."""
        return cls(
            parcel_id=parcel_id,
            route=Route.REJECT,
            reasons=(Reason(code=code, detail=detail, score=1.0),),
            policy_version=policy_version,
            decided_at_ns=at_ns,
            fail_closed=True,
        )
