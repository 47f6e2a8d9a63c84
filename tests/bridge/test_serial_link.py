"""Serial I/O link over real pseudo-terminals and loopback TCP: events, gate commands, noise, reconnect."""

from __future__ import annotations

import time

import pytest

from firmware_bridge.ioboard_emulator import IoBoardEmulator
from firmware_bridge.iolink import IoBoardLink, IoLinkError
from firmware_bridge.messages import (
    BarcodeReadMsg,
    BeltStateMsg,
    EncoderTickMsg,
    GateActuatedMsg,
    GateReason,
    GeneratorStatusMsg,
    PhotoEyeEdgeMsg,
)
from tests.bridge.conftest import small_plan


def wait_for(pred, timeout_s: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def drain(link: IoBoardLink, seconds: float) -> list[object]:
    out: list[object] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ev = link.poll_event(0.05)
        if ev is not None:
            out.append(ev)
    return out


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_events_follow_the_plan_and_gate_commands_are_logged(transport: str) -> None:
    plan = small_plan(n_parcels=3, belt_speed_mm_s=5000.0, scan_to_gate_mm=700.0)
    with IoBoardEmulator(plan, transport=transport) as emu, IoBoardLink(emu.url) as link:
        assert wait_for(link.link_alive)
        emu.clock.start()
        events: list[object] = []
        end = time.monotonic() + plan.n_lines / plan.line_rate_hz + 0.4
        while time.monotonic() < end:
            ev = link.poll_event(0.05)
            if ev is None:
                continue
            events.append(ev)
            if isinstance(ev, PhotoEyeEdgeMsg) and not ev.blocked:
                # release parcel 1, reject the others
                ack = link.send_gate_command(ev.parcel_seq, ev.parcel_seq != 1, 1000 + ev.parcel_seq, 0)
                assert ack.accepted and ack.reason is GateReason.OK and ack.sequence == 1000 + ev.parcel_seq
        # a command for a parcel that already passed the gate is refused as too late
        late = link.send_gate_command(1, False, 2000, 0)
        assert not late.accepted and late.reason is GateReason.TOO_LATE
        unknown = link.send_gate_command(99, False, 2001, 0)
        assert unknown.reason is GateReason.UNKNOWN_PARCEL
    assert isinstance(events[0], BeltStateMsg) and events[0].running
    assert any(isinstance(e, GeneratorStatusMsg) and e.interlock_closed for e in events)
    assert any(isinstance(e, EncoderTickMsg) for e in events)
    reads = [e for e in events if isinstance(e, BarcodeReadMsg)]
    assert [r.codes for r in reads] == [p.barcodes for p in plan.parcels]
    edges = [e for e in events if isinstance(e, PhotoEyeEdgeMsg)]
    assert [(e.blocked, e.parcel_seq) for e in edges] == [
        (True, 1),
        (False, 1),
        (True, 2),
        (False, 2),
        (True, 3),
        (False, 3),
    ]
    planned = [ev for ev in plan.events() if ev.kind.startswith("eye")]
    assert [e.encoder_counts for e in edges] == [ev.encoder_counts for ev in planned]
    # barcode read happens upstream of the eye: its count is barcode_to_eye_mm before the blocked edge
    assert edges[0].encoder_counts - reads[0].encoder_counts == round(
        plan.barcode_to_eye_mm * plan.encoder_counts_per_mm
    )
    actuated = {e.parcel_seq: e for e in events if isinstance(e, GateActuatedMsg)}
    assert actuated[1].divert is False and actuated[2].divert is True and actuated[1].commanded
    log = emu.gate_log
    assert log[1].command_before_gate and log[1].command_divert is False and log[1].diverted is False
    assert log[2].command_divert is True and log[2].diverted is True
    assert log[1].late_commands == 1
    assert log[1].barcodes == plan.parcels[0].barcodes


def test_no_command_means_fail_secure_divert() -> None:
    plan = small_plan(n_parcels=1, belt_speed_mm_s=5000.0, scan_to_gate_mm=100.0)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url) as link:
        emu.clock.start()
        events = drain(link, plan.n_lines / plan.line_rate_hz + 0.3)
    (act,) = [e for e in events if isinstance(e, GateActuatedMsg)]
    assert act.divert and not act.commanded
    assert emu.gate_log[1].diverted is True and emu.gate_log[1].command_divert is None


def test_garbage_and_corruption_are_skipped_counted_nakd_and_link_resyncs() -> None:
    plan = small_plan(n_parcels=2, belt_speed_mm_s=5000.0)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url) as link:
        assert wait_for(link.link_alive)
        emu.inject_garbage(b"\x13\x37\xff\xfe" * 10 + b"\x00")
        emu.inject_garbage(b"\x02\x99\x98")  # an unterminated fragment, glued to the next frame
        emu.link.corrupt_next_frames = 3  # the next three events go out with a flipped byte
        emu.clock.start()
        events = drain(link, plan.n_lines / plan.line_rate_hz + 0.3)
        dstats, lstats = link.decoder_stats, link.stats
        assert emu.link.stats.naks_received >= 3  # the board heard our NAKs and retransmitted
        assert emu.link.stats.retransmits >= 3
    assert dstats.frames_bad >= 4 and dstats.bytes_skipped >= 40
    assert lstats.naks_sent >= 4
    # nothing lost, nothing duplicated: every planned edge arrived exactly once
    edges = [(e.blocked, e.parcel_seq) for e in events if isinstance(e, PhotoEyeEdgeMsg)]
    assert edges == [(True, 1), (False, 1), (True, 2), (False, 2)]
    assert len([e for e in events if isinstance(e, BeltStateMsg)]) == 1


def test_host_retransmits_a_corrupted_gate_command() -> None:
    plan = small_plan(n_parcels=1, belt_speed_mm_s=500.0, scan_to_gate_mm=2000.0)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url) as link:
        emu.clock.start()
        link.framed_link.corrupt_next_frames = 2
        ack = link.send_gate_command(1, False, 7, 0)
        assert ack.accepted
        assert link.stats.retransmits == 2 and link.stats.naks_received >= 2
        assert emu.counters.gate_commands == 1  # applied once


def test_lost_ack_leads_to_a_duplicate_that_is_reacked_and_dropped() -> None:
    plan = small_plan(n_parcels=1, belt_speed_mm_s=500.0, scan_to_gate_mm=2000.0)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url) as link:
        emu.clock.start()
        emu.link.corrupt_next_acks = 1  # the board's ACK of our command is garbled on the way back
        ack = link.send_gate_command(1, True, 8, 0)
        assert ack.accepted and ack.divert
        assert link.stats.retransmits == 1
        assert emu.link.stats.duplicates_dropped == 1
        assert emu.counters.gate_commands == 1


def test_unacknowledged_command_fails_after_bounded_retransmits() -> None:
    plan = small_plan(n_parcels=1)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url, retries=2) as link:
        link.framed_link.corrupt_next_frames = 10
        with pytest.raises(IoLinkError, match="not acknowledged after 3 tries"):
            link.send_gate_command(1, True, 1, 0)
        assert emu.counters.gate_commands == 0


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_vanished_port_gives_clear_error_and_reconnects(transport: str) -> None:
    plan = small_plan(n_parcels=1, belt_speed_mm_s=200.0, scan_to_gate_mm=3000.0)
    with IoBoardEmulator(plan, transport=transport) as emu, IoBoardLink(emu.url, reconnect_period_s=0.05) as link:
        assert wait_for(link.link_alive)
        emu.unplug()
        assert wait_for(lambda: not link.connected)
        assert not link.link_alive()
        with pytest.raises(IoLinkError, match="serial port"):
            link.send_gate_command(1, True, 1, 0)
        assert link.last_error and ("lost" in link.last_error or "cannot open" in link.last_error)
        emu.replug()
        assert wait_for(link.link_alive, 5.0)
        assert link.stats.reconnects >= 1 and link.stats.disconnects >= 1
        emu.clock.start()
        ack = link.send_gate_command(1, False, 2, 0)
        assert ack.accepted


def test_unopenable_port_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IoLinkError, match="cannot open"):
        IoBoardLink(str(tmp_path / "no-such-tty"))


def test_loop_transport_sees_its_own_heartbeat() -> None:
    with IoBoardLink("loop://") as link:
        assert wait_for(link.link_alive)
        assert link.stats.heartbeats_received > 0


def test_plan_events_for_touching_parcels_share_one_parcel_seq() -> None:
    touching = small_plan(n_parcels=3, gap_mm=0.0)
    kinds = [(ev.kind, ev.group) for ev in touching.events() if ev.kind != "barcode"]
    assert kinds == [("eye_blocked", 0), ("eye_clear", 0), ("gate", 0)]
    clear = next(ev for ev in touching.events() if ev.kind == "eye_clear")
    _, end_of_last = touching.parcel_line_ranges[-1]
    assert clear.encoder_counts == round(end_of_last * touching.counts_per_line) - 800  # 80 mm eye-to-scan
    assert sum(1 for ev in touching.events() if ev.kind == "barcode") == 3


def test_interlock_change_reaches_the_host() -> None:
    plan = small_plan(n_parcels=1)
    with IoBoardEmulator(plan) as emu, IoBoardLink(emu.url) as link:
        emu.clock.start()
        emu.set_generator(xray_on=False, interlock_closed=False)
        events = drain(link, 0.5)
    statuses = [e for e in events if isinstance(e, GeneratorStatusMsg)]
    assert statuses[0].interlock_closed and statuses[0].xray_on  # at belt start
    assert any(not s.interlock_closed and not s.xray_on for s in statuses[1:])
