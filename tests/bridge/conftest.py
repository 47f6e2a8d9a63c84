from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.belt_plan import BeltPlan, PlannedParcel, uniform_references


def small_plan(
    n_channels: int = 32,
    n_parcels: int = 3,
    lines: int = 90,
    gap_mm: float = 160.0,
    belt_speed_mm_s: float = 5000.0,
    max_value: int = 65535,
    seed: int = 0,
    **kw: float,
) -> BeltPlan:
    rng = np.random.default_rng(seed)
    parcels = tuple(
        PlannedParcel(
            rng.integers(1, max_value, (lines + 7 * i, n_channels), dtype=np.uint16),
            rng.integers(1, max_value, (lines + 7 * i, n_channels), dtype=np.uint16),
            (f"SF{i:010d}",),
            gap_mm,
        )
        for i in range(n_parcels)
    )
    air = min(60000, max_value - 1)
    return BeltPlan(
        parcels,
        *uniform_references(n_channels, air=air, dark=100, low_air=air - 1),
        belt_speed_mm_s=belt_speed_mm_s,
        eye_to_scan_mm=kw.pop("eye_to_scan_mm", 80.0),
        barcode_to_eye_mm=kw.pop("barcode_to_eye_mm", 80.0),
        scan_to_gate_mm=kw.pop("scan_to_gate_mm", 800.0),
        trailing_gap_mm=kw.pop("trailing_gap_mm", 100.0),
        n_reference_lines=16,
        **kw,
    )


@pytest.fixture
def plan() -> BeltPlan:
    return small_plan()
