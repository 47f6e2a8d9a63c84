"""ParcelAssembler: photo-eye windows + line blocks -> parcels; lost lines zero-filled and listed, never invented."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.assembly import AssemblerConfig, ParcelAssembler
from firmware_bridge.belt_plan import BeltPlan, PlannedParcel, uniform_references
from firmware_bridge.lines import LineBlock, LineKind

N_CH = 8


def make_plan(gaps: list[float], lengths: list[int]) -> BeltPlan:
    rng = np.random.default_rng(len(gaps))
    parcels = tuple(
        PlannedParcel(
            rng.integers(1, 50000, (n, N_CH), dtype=np.uint16),
            rng.integers(1, 50000, (n, N_CH), dtype=np.uint16),
            (f"P{i}",),
            gap,
        )
        for i, (gap, n) in enumerate(zip(gaps, lengths, strict=True))
    )
    return BeltPlan(parcels, *uniform_references(N_CH), eye_to_scan_mm=160.0, barcode_to_eye_mm=100.0)


def config(plan: BeltPlan, **kw: int) -> AssemblerConfig:
    return AssemblerConfig(plan.encoder_counts_per_mm, plan.line_pitch_mm, plan.eye_to_scan_mm, **kw)


def blocks_of(plan: BeltPlan, per_block: int = 16, drop_lines: set[int] | None = None) -> list[LineBlock]:
    drop_lines = drop_lines or set()
    out: list[LineBlock] = []
    for first in range(0, plan.n_lines, per_block):
        n = min(per_block, plan.n_lines - first)
        high, low = plan.lines(first, n)
        k = np.arange(first, first + n, dtype=np.int64)
        keep = np.array([int(i) not in drop_lines for i in k])
        # split into runs of kept lines, as the receiver does
        i = 0
        while i < n:
            if not keep[i]:
                i += 1
                continue
            j = i
            while j < n and keep[j]:
                j += 1
            out.append(
                LineBlock(high[i:j], low[i:j], first + i, plan.encoder_at_line(k[i:j]), k[i:j] * 1000, LineKind.SCAN)
            )
            i = j
    return out


def run(plan: BeltPlan, blocks: list[LineBlock], asm: ParcelAssembler, edges_first: bool = True) -> list:  # type: ignore[type-arg]
    events = [ev for ev in plan.events() if ev.kind in ("eye_blocked", "eye_clear")]
    out = []
    if edges_first:
        # merge by encoder count: an edge is fed once the stream has reached its counts (eye is upstream)
        ei = 0
        for b in blocks:
            while ei < len(events) and events[ei].encoder_counts <= int(b.encoder_counts[-1]):
                ev = events[ei]
                out += asm.feed_edge(ev.kind == "eye_blocked", ev.encoder_counts, ev.encoder_counts * 7, ev.group + 1)
                ei += 1
            out += asm.feed_block(b)
        for ev in events[ei:]:
            out += asm.feed_edge(ev.kind == "eye_blocked", ev.encoder_counts, ev.encoder_counts * 7, ev.group + 1)
    out += asm.flush()
    return out


def test_parcels_come_out_exactly_with_their_position() -> None:
    plan = make_plan([300, 250, 400], [120, 77, 200])
    parcels = run(plan, blocks_of(plan), ParcelAssembler(config(plan)))
    assert len(parcels) == 3
    for p, planned, (start, _stop) in zip(parcels, plan.parcels, plan.parcel_line_ranges, strict=True):
        assert p.complete
        assert p.first_line_index == start
        np.testing.assert_array_equal(p.high, planned.high)
        np.testing.assert_array_equal(p.low, planned.low)
        assert p.belt_position_mm == pytest.approx(start * plan.line_pitch_mm)
        assert p.entered_at_ns == p.entry_encoder_counts * 7


def test_lost_lines_are_zero_filled_and_listed() -> None:
    plan = make_plan([300, 300], [100, 100])
    (s0, _), (s1, _) = plan.parcel_line_ranges
    lost = set(range(s0 + 10, s0 + 14)) | {s1 + 99} | {s1}
    parcels = run(plan, blocks_of(plan, drop_lines=lost), ParcelAssembler(config(plan)))
    assert parcels[0].missing_lines == ((10, 14),)
    assert parcels[1].missing_lines == ((0, 1), (99, 100))
    assert not parcels[0].complete and parcels[0].n_missing_lines == 4
    assert (parcels[0].high[10:14] == 0).all() and (parcels[0].low[10:14] == 0).all()
    np.testing.assert_array_equal(parcels[0].high[14:], plan.parcels[0].high[14:])
    np.testing.assert_array_equal(parcels[1].high[1:99], plan.parcels[1].high[1:99])


def test_touching_parcels_come_out_as_one_scan() -> None:
    plan = make_plan([300, 0, 300], [60, 80, 50])
    parcels = run(plan, blocks_of(plan), ParcelAssembler(config(plan)))
    assert len(parcels) == 2
    np.testing.assert_array_equal(parcels[0].high, np.concatenate([plan.parcels[0].high, plan.parcels[1].high]))
    assert parcels[0].complete


def test_too_long_parcel_is_cut_and_marked_truncated() -> None:
    plan = make_plan([300], [300])
    parcels = run(plan, blocks_of(plan), ParcelAssembler(config(plan, max_parcel_lines=128, buffer_lines=512)))
    assert parcels[0].truncated and parcels[0].n_lines == 128
    np.testing.assert_array_equal(parcels[0].high, plan.parcels[0].high[:128])


def test_stream_ending_inside_a_parcel_is_truncated() -> None:
    plan = make_plan([300], [200])
    start, _ = plan.parcel_line_ranges[0]
    blocks = [b for b in blocks_of(plan) if b.end_line_index <= start + 64]
    asm = ParcelAssembler(config(plan))
    events = [ev for ev in plan.events() if ev.kind == "eye_blocked"]
    out = asm.feed_edge(True, events[0].encoder_counts, 1, 1)
    for b in blocks:
        out += asm.feed_block(b)
    assert out == []
    (parcel,) = asm.flush()
    assert parcel.truncated and parcel.n_lines == 64
    assert parcel.exit_encoder_counts is None


def test_reference_blocks_are_not_scan_lines() -> None:
    plan = make_plan([300], [50])
    asm = ParcelAssembler(config(plan))
    dark = LineBlock(
        np.zeros((4, N_CH), np.uint16),
        np.zeros((4, N_CH), np.uint16),
        0,
        np.zeros(4, np.int64),
        np.zeros(4, np.int64),
        LineKind.DARK,
    )
    assert asm.feed_block(dark) == []
    assert asm.stats.reference_blocks_ignored == 1
    parcels = run(plan, blocks_of(plan), asm)
    assert len(parcels) == 1 and parcels[0].complete


def test_out_of_order_blocks_are_refused() -> None:
    plan = make_plan([300], [50])
    blocks = blocks_of(plan)
    asm = ParcelAssembler(config(plan))
    asm.feed_block(blocks[1])
    with pytest.raises(ValueError, match="line order"):
        asm.feed_block(blocks[0])
