from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from smartscreen.domain import (
    DeadlineMissed,
    Decision,
    GateAcknowledged,
    GateCommand,
    GateCommanded,
    ParcelDecided,
    ParcelEvent,
    Reason,
    ReasonCode,
    Route,
)
from smartscreen.errors import StorageError
from smartscreen.gate import (
    AckStatus,
    DecisionRecord,
    EmulatedPlc,
    GateController,
    GateOutcome,
    GateStatus,
    GateTiming,
    PlcMode,
    parcel_key,
)
from smartscreen.gate.drivers import ModbusGate, ModbusPlcServer, PlcSimGate
from smartscreen.gate.records import crc16_ccitt_false, parse_record

# 1 m from scanner to gate at 2.5 m/s: 400 ms of travel, generous for a loaded CI machine
D_MM, V_MM_S, MARGIN_MS = 1000.0, 2500.0, 60.0


def test_crc_variant_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_record_round_trip_and_corruption() -> None:
    rec = DecisionRecord(0x12345678, 7, Route.REJECT, ReasonCode.DEADLINE_MISSED)
    regs = rec.registers()
    assert parse_record(regs) == (rec, AckStatus.ACCEPTED)
    regs[3] = 1
    assert parse_record(regs)[1] is AckStatus.BAD_CRC
    assert parcel_key("L1-42") == 42
    with pytest.raises(ValueError, match="sequence"):
        parcel_key("L1-abc")


def test_timing() -> None:
    t = GateTiming(scanner_to_gate_mm=5000, belt_speed_mm_s=2500, actuator_margin_ms=150, guard_ms=40)
    assert t.travel_ns == 2_000_000_000
    assert t.deadline_ns(10**9) == 10**9 + 2_000_000_000 - 150_000_000
    assert t.fallback_at_ns(0) == t.deadline_ns(0) - 40_000_000
    assert t.budget_ms(800) == pytest.approx(4200 / 2.5 - 150)
    # conveyor tracking: parcel entered at 1000 mm, belt now at 3000 mm, running at 2 m/s
    assert t.deadline_from_position_ns(1000, 3000, 0, 2000) == 1_500_000_000 - 150_000_000
    with pytest.raises(ValueError, match="no parcel could be decided"):
        GateTiming(scanner_to_gate_mm=100, belt_speed_mm_s=2500, actuator_margin_ms=50)


class Journal:
    def __init__(self) -> None:
        self.events: list[ParcelEvent] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, events: Sequence[ParcelEvent]) -> None:
        if self.fail:
            raise StorageError("disk full")
        with self.lock:
            self.events.extend(events)

    def of(self, kind: type, parcel_id: str) -> list[ParcelEvent]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind) and e.parcel_id == parcel_id]


def clear(pid: str) -> Decision:
    return Decision(pid, Route.CLEAR, (), "test", time.time_ns())


def reject(pid: str) -> Decision:
    return Decision(pid, Route.REJECT, (Reason(ReasonCode.PROHIBITED_ITEM, "gun", 1.0),), "test", time.time_ns())


def make_line() -> tuple[EmulatedPlc, PlcSimGate, GateController, Journal, list[GateOutcome]]:
    plc = EmulatedPlc(scanner_to_gate_mm=D_MM, belt_speed_mm_s=V_MM_S, actuator_ms=20, heartbeat_period_ms=20).start()
    gate = PlcSimGate(plc, heartbeat_period_ms=20)
    journal = Journal()
    outcomes: list[GateOutcome] = []
    timing = GateTiming(scanner_to_gate_mm=D_MM, belt_speed_mm_s=V_MM_S, actuator_margin_ms=MARGIN_MS, guard_ms=20)
    ctl = GateController(gate, timing, line_id="L1", policy_version="test", journal=journal, on_outcome=outcomes.append)
    return plc, gate, ctl.start(), journal, outcomes


def test_every_parcel_gets_one_command_or_a_fail_closed_reject() -> None:
    plc, gate, ctl, journal, outcomes = make_line()
    try:
        t0 = time.time_ns()
        for i in range(1, 5):
            plc.track(i, t0)
            ctl.expect(f"L1-{i}", t0)
        ctl.submit(clear("L1-1"), t0)
        ctl.submit(reject("L1-2"), t0)
        # L1-3 never gets a decision (stalled detector); L1-4's decision comes after its fallback
        assert plc.wait_for(lambda: len(plc.results) == 4, timeout_s=5)
        ctl.submit(clear("L1-4"), t0)
        time.sleep(0.1)
    finally:
        ctl.stop()
        gate.close()
        plc.stop()
    res = plc.results
    assert (res[1].route, res[1].commanded) == (Route.CLEAR, True)
    assert (res[2].route, res[2].commanded) == (Route.REJECT, True)
    assert res[3].route is Route.REJECT and res[4].route is Route.REJECT  # never CLEAR without a decision
    for pid in ("L1-1", "L1-2", "L1-3", "L1-4"):
        assert len(journal.of(GateCommanded, pid)) == 1, pid  # exactly one command each
    decided3 = journal.of(ParcelDecided, "L1-3")
    assert len(decided3) == 1 and decided3[0].decision.fail_closed  # type: ignore[attr-defined]
    assert decided3[0].decision.reasons[0].code is ReasonCode.DEADLINE_MISSED  # type: ignore[attr-defined]
    # L1-4: its fallback was commanded, then the late decision was recorded as a miss and dropped
    assert [e.stage for e in journal.of(DeadlineMissed, "L1-4")] == ["decision", "decision"]  # type: ignore[attr-defined]
    assert ctl.fallbacks == 2 and ctl.late_decisions == 1
    assert {o.parcel_id for o in outcomes if o.late} == {"L1-3", "L1-4"}
    assert all(len(journal.of(GateAcknowledged, p)) == 1 for p in ("L1-1", "L1-2"))


def test_gate_link_down_records_fail_closed_and_plc_rejects() -> None:
    plc, gate, ctl, journal, outcomes = make_line()
    try:
        plc.paused = True  # the PLC's heartbeat stops
        assert plc.wait_for(lambda: False, 0.2) is False
        assert not gate.link_alive()
        t0 = time.time_ns()
        plc.track(1, t0)
        ctl.expect("L1-1", t0)
        ctl.submit(clear("L1-1"), t0)
        assert plc.wait_for(lambda: 1 in plc.results, timeout_s=5)
    finally:
        ctl.stop()
        gate.close()
        plc.stop()
    assert plc.results[1].route is Route.REJECT and not plc.results[1].commanded
    decided = journal.of(ParcelDecided, "L1-1")
    assert decided[0].decision.route is Route.REJECT and decided[0].decision.fail_closed  # type: ignore[attr-defined]
    assert decided[0].decision.reasons[0].code is ReasonCode.GATE_LINK_DOWN  # type: ignore[attr-defined]
    assert outcomes[0].status is GateStatus.LINK_DOWN and not journal.of(GateCommanded, "L1-1")


def test_journal_failure_never_releases_a_parcel() -> None:
    plc, gate, ctl, journal, outcomes = make_line()
    try:
        journal.fail = True
        t0 = time.time_ns()
        plc.track(1, t0)
        ctl.expect("L1-1", t0)
        ctl.submit(clear("L1-1"), t0)
        assert plc.wait_for(lambda: 1 in plc.results, timeout_s=5)
    finally:
        ctl.stop()
        gate.close()
        plc.stop()
    assert plc.results[1].route is Route.REJECT and outcomes[0].decision.fail_closed
    assert ctl.journal_errors >= 1


def test_modbus_gate_over_loopback() -> None:
    plc = EmulatedPlc(scanner_to_gate_mm=D_MM, belt_speed_mm_s=V_MM_S, actuator_ms=20, heartbeat_period_ms=20).start()
    server = ModbusPlcServer(plc).start()
    gate = ModbusGate("127.0.0.1", server.port, heartbeat_period_ms=20)
    try:
        t0 = time.time_ns()
        for i in (1, 2):
            plc.track(i, t0)
        ack = gate.command(GateCommand("L1-1", Route.CLEAR, 100, t0 + 10**9), 0.5)
        assert ack.accepted and ack.sequence == 100
        assert not gate.command(GateCommand("L1-1", Route.CLEAR, 101, t0 + 10**9), 0.5).accepted  # one per parcel
        assert gate.command(GateCommand("L1-2", Route.REJECT, 102, t0 + 10**9), 0.5).accepted
        assert plc.wait_for(lambda: len(plc.results) == 2, timeout_s=5)
        assert plc.results[1].route is Route.CLEAR and plc.results[2].route is Route.REJECT
        assert gate.link_alive()
        # the PLC freezes: the bridge sees its heartbeat stop
        plc.paused = True
        assert plc.wait_for(lambda: False, 0.3) is False
        assert not gate.link_alive()
        plc.paused = False
        # the bridge goes away: the PLC trips its watchdog and rejects everything
        gate.close()
        assert plc.wait_for(lambda: plc.mode is PlcMode.ALL_REJECT, timeout_s=2)
        plc.track(3, time.time_ns())
        assert plc.wait_for(lambda: 3 in plc.results, timeout_s=5)
        assert plc.results[3].cause == "watchdog" and plc.watchdog_trips >= 1
    finally:
        gate.close()
        server.stop()
        plc.stop()


def test_modbus_gate_down_raises_gate_error() -> None:
    from smartscreen.errors import GateError
    from smartscreen.gate.drivers import free_tcp_port

    gate = ModbusGate("127.0.0.1", free_tcp_port(), timeout_s=0.1, heartbeat_period_ms=20)
    try:
        with pytest.raises(GateError):
            gate.command(GateCommand("L1-1", Route.CLEAR, 1, 0), 0.2)
        time.sleep(0.1)
        assert not gate.link_alive()
    finally:
        gate.close()


def test_review_route_reaches_the_plc_as_manual_review() -> None:
    plc, gate, ctl, _journal, outcomes = make_line()
    try:
        t0 = time.time_ns()
        plc.track(1, t0)
        ctl.expect("L1-1", t0)
        review = Decision("L1-1", Route.REVIEW, (Reason(ReasonCode.DECLARED_MISMATCH, "battery", 0.6),), "t", t0)
        ctl.submit(review, t0)
        assert plc.wait_for(lambda: 1 in plc.results, timeout_s=5)
    finally:
        ctl.stop()
        gate.close()
        plc.stop()
    assert plc.results[1].route is Route.REVIEW and plc.results[1].commanded
    assert outcomes[0].status is GateStatus.ACKNOWLEDGED and outcomes[0].policy_route is Route.REVIEW
