"""Facts reported by the scanner's I/O board, as the rest of the system sees them.

The wire messages live in ``firmware_bridge``; the adapter in ``smartscreen.line``
translates them into these types so no stage depends on the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartscreen.domain.decision import Route
from smartscreen.domain.waybill import BarcodeRead


@dataclass(frozen=True, slots=True)
class PhotoEyeEdge:
    """A photo-eye changed state: ``blocked=True`` when a leading edge arrives."""

    eye_id: int
    blocked: bool
    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class EncoderTick:
    """Periodic belt encoder report."""

    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class BeltState:
    running: bool
    speed_mm_s: float
    at_ns: int


@dataclass(frozen=True, slots=True)
class GeneratorStatus:
    """X-ray generator state; ``interlock_closed`` False means no X-rays may be produced."""

    xray_on: bool
    interlock_closed: bool
    kv: float
    ma: float
    at_ns: int


@dataclass(frozen=True, slots=True)
class GateCommand:
    """Set the reject gate for one parcel."""

    parcel_id: str
    route: Route
    sequence: int
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class GateAck:
    """The gate's answer to a :class:`GateCommand`."""

    parcel_id: str
    sequence: int
    accepted: bool
    route: Route
    at_ns: int


IoEvent = PhotoEyeEdge | EncoderTick | BeltState | GeneratorStatus | BarcodeRead | GateAck
