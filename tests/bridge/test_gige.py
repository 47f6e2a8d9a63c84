"""GigE Vision over real loopback UDP: scanner emulator -> GigeLineSource, with resend and faults."""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_bridge import gvcp
from firmware_bridge.belt_plan import BeltPlan
from firmware_bridge.genicam import DevReg, resolve_features
from firmware_bridge.gige_client import GvcpClient, GvcpStatusError, discover
from firmware_bridge.gige_receiver import GigeLineSource, ResendTiming
from firmware_bridge.gvsp import PixelFormat
from firmware_bridge.lines import LineBlock, LineKind
from firmware_bridge.scanner_emulator import FaultConfig, ScannerEmulator
from tests.bridge.conftest import small_plan


def collect(src: GigeLineSource, idle_s: float = 0.6, limit_s: float = 20.0) -> list[LineBlock]:
    blocks: list[LineBlock] = []
    t_end = time.monotonic() + limit_s
    while time.monotonic() < t_end:
        b = src.read_block(idle_s)
        if b is None:
            break
        blocks.append(b)
    return blocks


def scan_lines(blocks: list[LineBlock]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    scan = [b for b in blocks if b.kind is LineKind.SCAN]
    idx = np.concatenate([np.arange(b.first_line_index, b.end_line_index) for b in scan])
    return (
        idx,
        np.concatenate([b.high for b in scan]),
        np.concatenate([b.low for b in scan]),
        np.concatenate([b.encoder_counts for b in scan]),
    )


def assert_lines_match_plan(blocks: list[LineBlock], plan: BeltPlan, complete: bool = True) -> np.ndarray:
    idx, high, low, enc = scan_lines(blocks)
    bad = np.flatnonzero(np.diff(idx) <= 0)
    assert bad.size == 0, (
        f"lines must come in order, without duplicates: {[(int(idx[i]), int(idx[i + 1])) for i in bad[:5]]}"
    )
    ref_high, ref_low = plan.lines(0, plan.n_lines)
    np.testing.assert_array_equal(high, ref_high[idx])
    np.testing.assert_array_equal(low, ref_low[idx])
    np.testing.assert_array_equal(enc, plan.encoder_at_line(idx.astype(np.int64)))
    if complete:
        np.testing.assert_array_equal(idx, np.arange(plan.n_lines))
    return idx


def test_lossless_stream_with_references_and_partial_last_block(plan: BeltPlan) -> None:
    with ScannerEmulator(plan, lines_per_block=32) as emu, GigeLineSource(emu.url, packet_size=1500) as src:
        blocks = collect(src)
        stats = src.receiver_stats
    kinds = [b.kind for b in blocks]
    assert kinds[:2] == [LineKind.DARK, LineKind.AIR]  # references first, 16 lines each
    assert blocks[0].n_lines == 16 and (blocks[0].high == 100).all()
    assert (blocks[1].high == 60000).all() and (blocks[1].low == 59999).all()
    assert_lines_match_plan(blocks, plan)
    assert blocks[-1].n_lines == plan.n_lines % 32  # partial block: trailer size_y
    assert stats.frames_complete == len(blocks) and stats.frames_incomplete == 0
    assert stats.resend_requests == 0
    ts = np.concatenate([b.timestamps_ns for b in blocks if b.kind is LineKind.SCAN])
    assert np.all(np.diff(ts) > 0)


def test_mono12packed_with_jumbo_packets() -> None:
    plan = small_plan(n_channels=48, max_value=4096)
    with (
        ScannerEmulator(plan, pixel_format=PixelFormat.MONO12_PACKED) as emu,
        GigeLineSource(emu.url, packet_size=8192) as src,
    ):
        assert src.pixel_format == PixelFormat.MONO12_PACKED and src.n_channels == 48
        blocks = collect(src)
        stats = src.receiver_stats
    assert_lines_match_plan(blocks, plan)
    # a jumbo packet carries a whole 32-line block of 48 channels: leader + 1..2 payload + trailer
    assert stats.packets_received <= 4 * stats.frames_complete


def test_extended_ids_and_mono12p() -> None:
    plan = small_plan(max_value=4096)
    with (
        ScannerEmulator(plan, pixel_format=PixelFormat.MONO12P) as emu,
        GigeLineSource(emu.url, packet_size=1500, extended_ids=True) as src,
    ):
        blocks = collect(src)
        assert src._receiver.extended
        assert emu.counters.blocks_sent > 5
    assert_lines_match_plan(blocks, plan)


def test_block_id_wraps_65535_to_1(plan: BeltPlan) -> None:
    with ScannerEmulator(plan, start_block_id=0xFFF8) as emu, GigeLineSource(emu.url) as src:
        blocks = collect(src)
        stats = src.receiver_stats
    assert emu.counters.blocks_sent > 8  # so the wrap happened
    assert_lines_match_plan(blocks, plan)
    assert stats.frames_lost == 0 and stats.frames_incomplete == 0


def test_two_percent_loss_every_frame_complete_through_resends() -> None:
    plan = small_plan(n_parcels=4)
    faults = FaultConfig(loss=0.02, reorder=0.02, duplicate=0.02, seed=7)
    with ScannerEmulator(plan, faults=faults) as emu, GigeLineSource(emu.url, packet_size=1500) as src:
        blocks = collect(src)
        stats = src.receiver_stats
        assert emu.counters.packets_dropped > 0 and emu.counters.packets_duplicated > 0
    assert_lines_match_plan(blocks, plan)
    assert stats.frames_incomplete == 0 and stats.frames_lost == 0
    assert stats.resend_requests > 0 and stats.packets_resent_received > 0
    assert stats.packets_duplicate > 0


@pytest.mark.slow
def test_twenty_percent_loss_reports_incomplete_frames_without_inventing_lines() -> None:
    plan = small_plan(n_parcels=3)
    faults = FaultConfig(loss=0.2, reorder=0.05, duplicate=0.05, seed=11)
    timing = ResendTiming(max_requests_per_packet=1)
    with (
        ScannerEmulator(plan, faults=faults) as emu,
        GigeLineSource(emu.url, packet_size=1500, timing=timing) as src,
    ):
        blocks = collect(src)
        stats, lstats = src.receiver_stats, src.stats
        assert emu.counters.packets_dropped > 0
    idx = assert_lines_match_plan(blocks, plan, complete=False)  # what arrived is exact
    assert stats.frames_incomplete + stats.frames_lost > 0
    assert src.frames_incomplete > 0 and src.packets_lost > 0
    assert len(idx) < plan.n_lines
    assert lstats.lines_lost > 0


@pytest.mark.slow
def test_twenty_percent_loss_with_default_resend_policy_accounts_for_every_frame() -> None:
    plan = small_plan(n_parcels=3, seed=2)
    faults = FaultConfig(loss=0.2, reorder=0.05, duplicate=0.05, seed=12)
    with ScannerEmulator(plan, faults=faults) as emu, GigeLineSource(emu.url, packet_size=1500) as src:
        blocks = collect(src)
        stats = src.receiver_stats
        sent = emu.counters.blocks_sent
    assert_lines_match_plan(blocks, plan, complete=False)  # whatever arrived is exact, in order
    assert stats.frames_complete + stats.frames_incomplete + stats.frames_lost == sent  # every frame accounted
    assert stats.resend_requests > 0
    # lines that did not arrive are exactly those the source reports lost
    idx, _, _, _ = scan_lines(blocks)
    assert plan.n_lines - len(idx) == src.stats.lines_lost


def test_whole_lost_block_recovered_by_resend(plan: BeltPlan) -> None:
    with (
        ScannerEmulator(plan, faults=FaultConfig(drop_blocks=frozenset({3, 4}))) as emu,
        GigeLineSource(emu.url) as src,
    ):
        blocks = collect(src)
        stats = src.receiver_stats
        assert emu.counters.packets_resent > 0
    assert_lines_match_plan(blocks, plan)
    assert stats.frames_incomplete == 0


def test_block_gone_from_device_memory_is_reported_lost(plan: BeltPlan) -> None:
    faults = FaultConfig(drop_blocks=frozenset({3}))
    with ScannerEmulator(plan, faults=faults, retention_blocks=1) as emu, GigeLineSource(emu.url) as src:
        blocks = collect(src)
        stats = src.receiver_stats
        assert emu.counters.packets_unavailable > 0
    idx = assert_lines_match_plan(blocks, plan, complete=False)
    missing = np.setdiff1d(np.arange(plan.n_lines), idx)
    np.testing.assert_array_equal(missing, np.arange(3 * 32, 4 * 32))
    assert stats.frames_lost + stats.frames_incomplete >= 1 and stats.packets_unavailable > 0


def test_calibration_request_resends_references(plan: BeltPlan) -> None:
    with ScannerEmulator(plan) as emu, GigeLineSource(emu.url) as src:
        first = [src.read_block(2.0) for _ in range(3)]
        src.request_references()
        blocks = collect(src)
    kinds = [b.kind for b in first if b is not None] + [b.kind for b in blocks]
    assert kinds.count(LineKind.DARK) == 2 and kinds.count(LineKind.AIR) == 2
    dark = [b for b in [*first, *blocks] if b is not None and b.kind is LineKind.DARK]
    assert dark[1].first_line_index == dark[0].end_line_index  # reference counters keep counting


def test_gvcp_discovery_xml_privilege_and_errors(plan: BeltPlan) -> None:
    with ScannerEmulator(plan, serial="SN42", heartbeat_timeout_ms=400) as emu:
        host, port = emu.address
        info = discover(host, port)
        assert info is not None and info.serial == "SN42" and info.model == "DualEnergyLineScan"
        a, b = GvcpClient(host, port, timeout_s=0.2, retries=1), GvcpClient(host, port, timeout_s=0.2, retries=1)
        try:
            features = resolve_features(a.read_xml())
            assert features["Width"].address == DevReg.WIDTH
            assert features["GevSCPSPacketSize"].address == gvcp.Reg.SCPS0
            a.take_control()
            with pytest.raises(GvcpStatusError) as e:
                b.take_control()
            assert e.value.status == gvcp.Status.ACCESS_DENIED
            with pytest.raises(GvcpStatusError) as e:
                a.read_register(0x7FFFFFF0)
            assert e.value.status == gvcp.Status.INVALID_ADDRESS
            with pytest.raises(GvcpStatusError) as e:
                a.write_register(DevReg.WIDTH, 5)
            assert e.value.status == gvcp.Status.WRITE_PROTECT
            assert a.read_register(gvcp.Reg.HEARTBEAT_TIMEOUT) == 400
            # no heartbeat: the device drops our control after its timeout, then b may take it
            time.sleep(0.7)
            assert a.read_register(gvcp.Reg.CCP) == 0
            b.take_control()
            assert emu.counters.control_timeouts == 1
        finally:
            a.close()
            b.close()


def test_heartbeat_keeps_control(plan: BeltPlan) -> None:
    with ScannerEmulator(plan, heartbeat_timeout_ms=300) as emu:
        client = GvcpClient(*emu.address)
        try:
            client.take_control()
            client.start_heartbeat()
            time.sleep(0.8)
            assert client.read_register(gvcp.Reg.CCP) & gvcp.CCP_CONTROL
            assert not client.control_lost and emu.counters.control_timeouts == 0
        finally:
            client.close()


def test_slow_command_answered_with_pending_ack(plan: BeltPlan) -> None:
    with ScannerEmulator(plan, slow_command_ms=300) as emu:
        client = GvcpClient(*emu.address, timeout_s=0.1, retries=1)
        try:
            client.take_control()
            t0 = time.monotonic()
            client.write_register(DevReg.CALIBRATION_REQUEST, 1)  # 300 ms > 2 x 100 ms of timeouts
            assert time.monotonic() - t0 >= 0.25
            assert client.retransmissions == 0  # PENDING_ACK extended the wait instead
        finally:
            client.close()
