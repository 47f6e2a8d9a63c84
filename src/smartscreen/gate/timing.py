"""Deadline timing for the reject gate (``shared/reference/serial-and-plc.md`` section 5). Pure.

A parcel whose leading edge crossed the scan plane at ``t0`` reaches the gate at ``t0 + D / v``.
The gate needs its command ``actuator_margin_ms`` before that, so the deadline is
``t0 + D / v - margin``. The image is complete only when the trailing edge has left the scan
plane (``t0 + L / v``), which leaves ``(D - L) / v - margin`` for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class GateTiming:
    """Belt geometry and actuator needs of one line."""

    scanner_to_gate_mm: float
    belt_speed_mm_s: float
    actuator_margin_ms: float
    # how long before the deadline the gate stage sends a fail-closed REJECT for a parcel
    # that still has no decision (covers the write and acknowledgement round trip)
    guard_ms: float = 40.0

    def __post_init__(self) -> None:
        if self.scanner_to_gate_mm <= 0 or self.belt_speed_mm_s <= 0:
            raise ValueError("scanner_to_gate_mm and belt_speed_mm_s must be positive")
        if self.actuator_margin_ms < 0 or self.guard_ms < 0:
            raise ValueError("actuator_margin_ms and guard_ms must be >= 0")
        if self.travel_ns <= (self.actuator_margin_ms + self.guard_ms) * NS_PER_MS:
            raise ValueError(
                f"the belt needs {self.travel_ns / NS_PER_MS:.0f} ms from scanner to gate, less than the "
                f"actuator margin + guard ({self.actuator_margin_ms + self.guard_ms:.0f} ms): no parcel could be decided"
            )

    @property
    def travel_ns(self) -> int:
        """Time for a point on the belt to travel from the scan plane to the gate."""
        return round(self.scanner_to_gate_mm / self.belt_speed_mm_s * NS_PER_S)

    def deadline_ns(self, entered_at_ns: int) -> int:
        """Latest time the gate may receive the command of a parcel that entered at ``entered_at_ns``."""
        return entered_at_ns + self.travel_ns - round(self.actuator_margin_ms * NS_PER_MS)

    def arrival_ns(self, entered_at_ns: int) -> int:
        """When the parcel's leading edge reaches the gate."""
        return entered_at_ns + self.travel_ns

    def fallback_at_ns(self, entered_at_ns: int) -> int:
        """When the gate stage gives up waiting for a decision and sends a fail-closed REJECT."""
        return self.deadline_ns(entered_at_ns) - round(self.guard_ms * NS_PER_MS)

    def budget_ms(self, length_mm: float) -> float:
        """Time between the scan completing and the deadline for a parcel ``length_mm`` long."""
        return (self.scanner_to_gate_mm - length_mm) / self.belt_speed_mm_s * 1000.0 - self.actuator_margin_ms

    def deadline_from_position_ns(
        self, entry_position_mm: float, now_position_mm: float, now_ns: int, speed_mm_s: float
    ) -> int:
        """Deadline from conveyor tracking: where the parcel entered, where the belt is now and how fast it runs.

        Uses the measured speed (encoder) instead of the nominal one; a stopped belt gives a
        deadline far in the future only as far as the nominal speed allows (never later).
        """
        remaining_mm = entry_position_mm + self.scanner_to_gate_mm - now_position_mm
        speed = max(speed_mm_s, 1e-3)
        eta_ns = now_ns + round(remaining_mm / speed * NS_PER_S) - round(self.actuator_margin_ms * NS_PER_MS)
        return eta_ns
