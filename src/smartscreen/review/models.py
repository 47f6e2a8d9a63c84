"""Value types of the review service: accounts, sessions, verdict records, TIP settings and events."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from smartscreen.domain.events import VerdictBox, VerdictKind


class Role(StrEnum):
    """What an account may do. Each role includes the rights of the ones before it."""

    OPERATOR = "operator"  # review parcels of the own centre, record verdicts
    SUPERVISOR = "supervisor"  # + statistics of all operators of the centre, TIP settings and reports
    ADMIN = "admin"  # + manage accounts

    @property
    def rank(self) -> int:
        return (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    centre_id: str
    role: Role
    display_name: str
    disabled: bool
    created_at_ns: int


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated login. Only the token's sha256 is stored."""

    account: Account
    token_sha256: str
    expires_at_ns: int


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One verdict as recorded: the journal sequence number is its id; nothing is ever overwritten."""

    seq: int
    parcel_id: str
    centre_id: str
    line_id: str
    operator_id: str
    kind: VerdictKind
    at_ns: int
    boxes: tuple[VerdictBox, ...]
    comment: str
    supersedes_seq: int | None
    response_ms: float | None


class TipOutcome(StrEnum):
    HIT = "hit"  # the operator flagged the projected threat
    MISS = "miss"  # the operator cleared the parcel
    PENDING = "pending"  # not judged yet


@dataclass(frozen=True, slots=True)
class TipSettings:
    username: str
    enabled: bool
    probability: float  # chance that the next case shown is a TIP, per case served
    updated_by: str
    updated_at_ns: int


@dataclass(frozen=True, slots=True)
class TipEvent:
    """One projected threat shown to one operator (shared/reference/dicos-and-tip.md B.4)."""

    case_id: str
    operator_id: str
    centre_id: str
    line_id: str
    source_parcel_id: str
    threat_class: str
    box_xyxy: tuple[float, float, float, float]
    raw_sha256: str
    projected_at_ns: int
    outcome: TipOutcome
    verdict_kind: VerdictKind | None
    decided_at_ns: int | None
    response_ms: float | None
    iou: float | None


@dataclass(frozen=True, slots=True)
class OperatorStats:
    operator_id: str
    verdicts: int
    threat_confirmed: int
    false_alarm: int
    needs_opening: int
    corrections: int
    median_response_ms: float | None
    p90_response_ms: float | None


@dataclass(frozen=True, slots=True)
class LineStats:
    line_id: str
    parcels: int
    alarms: int
    pending_review: int
    reviewed: int
    threat_confirmed: int
    false_alarm: int
    needs_opening: int


@dataclass(frozen=True, slots=True)
class TipReportRow:
    operator_id: str
    enabled: bool
    probability: float
    projected: int
    hits: int
    misses: int
    pending: int
    detection_rate: float | None  # hits / (hits + misses)
    median_response_ms: float | None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]
