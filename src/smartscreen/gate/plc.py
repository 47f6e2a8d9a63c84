"""An emulated sorter PLC with its own conveyor clock, for tests, the demo and integrators.

It behaves like the PLC of ``serial-and-plc.md`` section 4: it owns tracking and timing. Parcels
are tracked from its own infeed (:meth:`EmulatedPlc.track`, fed from the belt plan, never by the
bridge); decision records arrive by parcel key; when a parcel reaches the gate the PLC applies a
valid decision that arrived at least ``actuator_ms`` earlier, and otherwise the default: REJECT.
A lost bridge heartbeat switches it to all-reject until the heartbeat returns. Every gate action
is recorded in :attr:`results` so tests can assert on what really happened at the gate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from smartscreen.domain.decision import Route
from smartscreen.gate.records import (
    AckStatus,
    DecisionRecord,
    PlcMode,
    parse_record,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GateResult:
    """What the gate did with one parcel."""

    parcel_key: int
    route: Route
    commanded: bool  # a valid decision arrived in time and was applied
    decision_route: Route | None
    decision_at_ns: int | None
    arrival_ns: int
    cause: str  # "commanded", "no_decision", "late", "watchdog"


@dataclass(slots=True)
class _Tracked:
    key: int
    arrival_ns: int
    record: DecisionRecord | None = None
    received_ns: int | None = None
    late: bool = False


class EmulatedPlc:
    """A sorter PLC: tracking, decision records, default-reject and a heartbeat watchdog."""

    def __init__(
        self,
        *,
        scanner_to_gate_mm: float,
        belt_speed_mm_s: float,
        actuator_ms: float = 100.0,
        heartbeat_period_ms: float = 100.0,
        heartbeat_trip_periods: int = 3,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._travel_ns = round(scanner_to_gate_mm / belt_speed_mm_s * 1e9)
        self._actuator_ns = round(actuator_ms * 1e6)
        self._period_ns = round(heartbeat_period_ms * 1e6)
        self._trip_ns = self._period_ns * heartbeat_trip_periods
        self._clock = clock
        self._lock = threading.Lock()
        self._tracked: dict[int, _Tracked] = {}
        self._early: dict[int, tuple[DecisionRecord, int]] = {}
        self.results: dict[int, GateResult] = {}
        self._last_seq: int | None = None
        self._ack_seq = 0
        self._ack_status = AckStatus.NONE
        self._plc_heartbeat = 0
        self._bridge_heartbeat: int | None = None
        self._bridge_heartbeat_ns = 0
        self.mode = PlcMode.NORMAL
        self.watchdog_trips = 0
        self.records_refused = 0
        self.paused = False  # a frozen PLC (its heartbeat stops): for link-loss tests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plc-sim", daemon=True)
        self._changed = threading.Condition(self._lock)

    # --- the PLC's own infeed --------------------------------------------------------------
    def track(self, parcel_key: int, entered_at_ns: int) -> None:
        """The PLC's infeed saw a parcel enter the scanner at ``entered_at_ns``."""
        with self._lock:
            t = _Tracked(parcel_key, entered_at_ns + self._travel_ns)
            early = self._early.pop(parcel_key, None)
            if early is not None:
                t.record, t.received_ns = early
            self._tracked[parcel_key] = t

    # --- the bridge side (Modbus registers or in-process) ----------------------------------
    def write_record(self, registers: list[int]) -> AckStatus:
        """A decision record arrived (one FC16 write)."""
        now = self._clock()
        record, status = parse_record(registers)
        with self._lock:
            if record is not None and record.sequence == self._last_seq:  # a repeated record
                status = AckStatus.STALE_SEQUENCE
            if record is not None and status is AckStatus.ACCEPTED:
                self._last_seq = record.sequence
                t = self._tracked.get(record.parcel_key)
                if t is None:
                    self._early[record.parcel_key] = (record, now)
                elif t.record is not None:
                    status = AckStatus.STALE_SEQUENCE  # one decision per parcel: the first stands
                elif now > t.arrival_ns - self._actuator_ns:
                    t.late = True
                    status = AckStatus.TOO_LATE
                else:
                    t.record, t.received_ns = record, now
            if status is not AckStatus.ACCEPTED:
                self.records_refused += 1
            self._ack_seq = (registers[2] & 0xFFFF) if len(registers) > 2 else 0
            self._ack_status = status
            self._changed.notify_all()
        return status

    def write_heartbeat(self, counter: int) -> None:
        with self._lock:
            if counter != self._bridge_heartbeat:
                self._bridge_heartbeat = counter
                self._bridge_heartbeat_ns = self._clock()

    def status_registers(self) -> list[int]:
        """Registers 20-23: last judged sequence, its status, PLC heartbeat, mode."""
        with self._lock:
            return [self._ack_seq, int(self._ack_status), self._plc_heartbeat & 0xFFFF, int(self.mode)]

    # --- the conveyor clock ----------------------------------------------------------------
    def start(self) -> EmulatedPlc:
        self._bridge_heartbeat_ns = self._clock()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        next_beat = self._clock()
        while not self._stop.is_set():
            now = self._clock()
            with self._lock:
                if not self.paused and now >= next_beat:
                    self._plc_heartbeat += 1
                    next_beat = now + self._period_ns
                if now - self._bridge_heartbeat_ns > self._trip_ns:
                    if self.mode is PlcMode.NORMAL:
                        self.watchdog_trips += 1
                        logger.warning("PLC: bridge heartbeat lost, all parcels to reject")
                    self.mode = PlcMode.ALL_REJECT
                elif self.mode is PlcMode.ALL_REJECT:
                    self.mode = PlcMode.NORMAL
                    logger.info("PLC: bridge heartbeat back")
                due = [t for t in self._tracked.values() if t.arrival_ns <= now]
                for t in due:
                    self._actuate(t)
                    del self._tracked[t.key]
                if due:
                    self._changed.notify_all()
            self._stop.wait(0.002)

    def _actuate(self, t: _Tracked) -> None:
        rec = t.record
        if self.mode is PlcMode.ALL_REJECT:
            route, commanded, cause = Route.REJECT, False, "watchdog"
        elif rec is not None:
            route, commanded, cause = rec.route, True, "commanded"
        else:
            route, commanded, cause = Route.REJECT, False, "late" if t.late else "no_decision"
        self.results[t.key] = GateResult(
            parcel_key=t.key,
            route=route,
            commanded=commanded,
            decision_route=rec.route if rec is not None else None,
            decision_at_ns=t.received_ns,
            arrival_ns=t.arrival_ns,
            cause=cause,
        )

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` (evaluated under the PLC lock) holds or the timeout expires."""
        with self._lock:
            return self._changed.wait_for(predicate, timeout=timeout_s)

    @property
    def tracked(self) -> int:
        with self._lock:
            return len(self._tracked)
