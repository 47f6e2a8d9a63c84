"""The whole bridge on loopback: both emulators on one belt plan -> GigeLineSource + IoBoardLink -> ParcelAssembler."""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.assembly import AssembledParcel, AssemblerConfig, ParcelAssembler
from firmware_bridge.emulate import EmulatedLine
from firmware_bridge.gige_receiver import GigeLineSource
from firmware_bridge.iolink import IoBoardLink
from firmware_bridge.lines import LineKind
from firmware_bridge.messages import BarcodeReadMsg, PhotoEyeEdgeMsg
from firmware_bridge.scanner_emulator import FaultConfig
from tests.bridge.conftest import small_plan


def run_line(line: EmulatedLine, seconds: float) -> tuple[list[AssembledParcel], list[BarcodeReadMsg], int]:
    plan = line.plan
    asm = ParcelAssembler(AssemblerConfig(plan.encoder_counts_per_mm, plan.line_pitch_mm, plan.eye_to_scan_mm))
    parcels: list[AssembledParcel] = []
    reads: list[BarcodeReadMsg] = []
    refs = 0
    with IoBoardLink(line.io_url) as io, GigeLineSource(line.scanner_url, packet_size=1500) as src:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            # one thread, two sources: drain I/O events first (the eye is upstream of the scan plane)
            while (ev := io.poll_event(0.0)) is not None:
                if isinstance(ev, PhotoEyeEdgeMsg):
                    parcels += asm.feed_edge(ev.blocked, ev.encoder_counts, ev.at_ns, ev.parcel_seq)
                elif isinstance(ev, BarcodeReadMsg):
                    reads.append(ev)
            block = src.read_block(0.02)
            if block is None:
                continue
            if block.kind is not LineKind.SCAN:
                refs += 1
            parcels += asm.feed_block(block)
    return parcels, reads, refs


def test_emulated_line_delivers_each_parcel_exactly() -> None:
    plan = small_plan(n_parcels=3)
    with EmulatedLine(plan) as line:
        parcels, reads, refs = run_line(line, plan.n_lines / plan.line_rate_hz + 0.8)
    assert refs == 2  # dark + air before the belt starts
    assert [p.parcel_seq for p in parcels] == [1, 2, 3]
    for p, planned, (start, _) in zip(parcels, plan.parcels, plan.parcel_line_ranges, strict=True):
        assert p.complete
        assert p.first_line_index == start
        np.testing.assert_array_equal(p.high, planned.high)
        np.testing.assert_array_equal(p.low, planned.low)
    assert [r.codes for r in reads] == [p.barcodes for p in plan.parcels]
    # entry time is the photo-eye edge's wall-clock time, on the same clock as the line timestamps
    assert parcels[0].entered_at_ns < parcels[1].entered_at_ns < parcels[2].entered_at_ns
    assert abs(parcels[0].entered_at_ns - time.time_ns()) < 60e9


def test_emulated_line_under_packet_loss_still_exact() -> None:
    plan = small_plan(n_parcels=2, seed=5)
    with EmulatedLine(plan, faults=FaultConfig(loss=0.05, seed=2)) as line:
        parcels, _, _ = run_line(line, plan.n_lines / plan.line_rate_hz + 0.8)
        assert line.scanner.counters.packets_dropped > 0
    assert len(parcels) == 2 and all(p.complete for p in parcels)
    for p, planned in zip(parcels, plan.parcels, strict=True):
        np.testing.assert_array_equal(p.high, planned.high)


def test_lost_block_shows_as_missing_lines_in_the_parcel() -> None:
    plan = small_plan(n_parcels=1, lines=200)
    (start, _) = plan.parcel_line_ranges[0]
    lost_block = (start + 40) // 32  # a block in the middle of the parcel
    faults = FaultConfig(drop_blocks=frozenset({lost_block}))
    with EmulatedLine(plan, faults=faults) as line:
        line.scanner._retention_blocks = 1  # nothing to resend from: the block is gone for good
        parcels, _, _ = run_line(line, plan.n_lines / plan.line_rate_hz + 0.8)
    (p,) = parcels
    a, b = lost_block * 32 - start, (lost_block + 1) * 32 - start
    assert p.missing_lines == ((a, b),)
    assert not p.complete and (p.high[a:b] == 0).all()
    np.testing.assert_array_equal(p.high[:a], plan.parcels[0].high[:a])
    np.testing.assert_array_equal(p.high[b:], plan.parcels[0].high[b:])
