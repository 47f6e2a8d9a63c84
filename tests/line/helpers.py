"""Belt plans, configs and journal checks shared by the line tests.

Parcels are raw dual-energy counts built from transmissions: a "clean" parcel is a light organic
load (renders orange), a "threat" parcel carries an 80 x 80 px block that almost nothing gets
through (renders black). The detector is the detection tests' analytic ONNX model, which scores
black cells as ``baton`` (prohibited), so the expected route of every parcel is known.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from firmware_bridge.belt_plan import BeltPlan, PlannedParcel
from smartscreen.config import SmartScreenConfig, parse_config
from smartscreen.domain import DeadlineMissed, GateCommanded, ParcelDecided, ParcelEvent, Route
from smartscreen.journal import Journal
from smartscreen.runtime.emulation import SimulatedBelt

CHANNELS = 256
DARK, AIR = 1000.0, 50000.0
SCANNER_TO_GATE_MM = 5000.0  # 2 s to the gate: generous on a loaded CI machine


def _counts(t: np.ndarray) -> np.ndarray:
    return np.clip(DARK + (AIR - DARK) * t, 0, 65535).astype(np.uint16)


def parcel(
    kind: str, codes: tuple[str, ...], n_lines: int = 250, gap_mm: float = 300.0, seed: int = 0
) -> PlannedParcel:
    rng = np.random.default_rng(seed)
    th = np.ones((n_lines, CHANNELS))
    tl = np.ones((n_lines, CHANNELS))
    th[:, 40:200], tl[:, 40:200] = 0.8, 0.75
    if kind == "threat":
        th[60:140, 80:160], tl[60:140, 80:160] = 0.01, 0.002
    noise_h = rng.normal(0, 0.002, th.shape)
    noise_l = rng.normal(0, 0.002, tl.shape)
    return PlannedParcel(_counts(th + noise_h), _counts(tl + noise_l), codes, gap_mm)


def belt(kinds: Sequence[str], codes: Sequence[tuple[str, ...]] | None = None) -> SimulatedBelt:
    codes = codes or [(f"T{i:05d}",) for i in range(len(kinds))]
    parcels = tuple(parcel(k, c, seed=i) for i, (k, c) in enumerate(zip(kinds, codes, strict=True)))
    plan = BeltPlan(
        parcels=parcels,
        air_high=np.full(CHANNELS, AIR, np.uint16),
        air_low=np.full(CHANNELS, AIR, np.uint16),
        dark_high=np.full(CHANNELS, DARK, np.uint16),
        dark_low=np.full(CHANNELS, DARK, np.uint16),
        belt_speed_mm_s=2500.0,
        line_pitch_mm=1.6,
        encoder_counts_per_mm=10.0,
        eye_to_scan_mm=200.0,
        barcode_to_eye_mm=1500.0,
        scan_to_gate_mm=SCANNER_TO_GATE_MM,
        trailing_gap_mm=300.0,
    )
    return SimulatedBelt(
        plan, tuple(k == "threat" for k in kinds), tuple(("baton",) if k == "threat" else () for k in kinds)
    )


def write_waybills(path: Path, codes: Sequence[str]) -> Path:
    records = [
        {
            "tracking_no": c,
            "carrier_code": "SF",
            "declared_items": [{"name": "clothes", "category_code": "apparel"}],
            "declared_weight_g": 500,
            "pii": {"sender_name": "测试人", "sender_phone": "13800001111"},
        }
        for c in codes
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def config(
    tmp: Path,
    package: Path,
    *,
    gate: str = "ioboard://",
    scanner_options: str = "",
    waybill_url: str | None = None,
    lines: int = 1,
    extra: str = "",
) -> SmartScreenConfig:
    waybill_url = waybill_url or f"file://{tmp / 'waybills.json'}"
    line_yaml = "".join(
        f"""
  - id: L{i + 1}
    scanner: "sim://?repeat=0{scanner_options}"
    io_board: "sim://"
    gate: "{gate}"
    geometry: {{channels: {CHANNELS}, kvp: 140}}
    scanner_to_gate_mm: {SCANNER_TO_GATE_MM}
    barcode_to_scanner_mm: 1500
    actuator_margin_ms: 100
"""
        for i in range(lines)
    )
    return parse_config(
        f"""
centre: {{id: TEST}}
lines:{line_yaml}
detector: {{package: "{package}", max_wait_ms: 5, timeout_ms: 600}}
journal: {{url: "sqlite:///{tmp / "journal.db"}", image_dir: "{tmp / "images"}"}}
waybill: {{url: "{waybill_url}", timeout_ms: 150}}
runtime: {{drain_s: 3}}
{extra}
"""
    )


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def journal_events(tmp: Path, parcel_id: str) -> list[ParcelEvent]:
    journal = Journal.open(f"sqlite:///{tmp / 'journal.db'}")
    try:
        return [e for _, e in journal.events_for(parcel_id)]
    finally:
        journal.close()


def decisions_and_commands(
    tmp: Path, parcel_ids: Sequence[str]
) -> dict[str, tuple[list[ParcelDecided], list[GateCommanded]]]:
    journal = Journal.open(f"sqlite:///{tmp / 'journal.db'}")
    try:
        out = {}
        for pid in parcel_ids:
            events = [e for _, e in journal.events_for(pid)]
            out[pid] = (
                [e for e in events if isinstance(e, ParcelDecided)],
                [e for e in events if isinstance(e, GateCommanded)],
            )
        return out
    finally:
        journal.close()


def check_gate_outcomes(
    tmp: Path, line_id: str, expected: dict[int, Route], reached: dict[int, tuple[bool, bool]]
) -> int:
    """The acceptance rule for every parcel: exactly one decision and at most one command, journaled; a
    policy decision commanded before the gate is what the gate did; anything else (late, missing, errored)
    is a recorded fail-closed divert. Threats are never released. ``reached`` maps parcel seq ->
    (diverted, commanded_in_time) from the emulated gate. Returns how many parcels were decided in time.
    """
    journaled = decisions_and_commands(tmp, [f"{line_id}-{seq}" for seq in expected])
    events = {seq: journal_events(tmp, f"{line_id}-{seq}") for seq in expected}
    on_time = 0
    for seq, route in expected.items():
        pid = f"{line_id}-{seq}"
        decided, commanded = journaled[pid]
        assert len(decided) == 1, f"{pid}: {len(decided)} decisions journaled"
        assert len(commanded) <= 1, f"{pid}: {len(commanded)} gate commands"
        decision = decided[0].decision
        diverted, in_time = reached[seq]
        if route is not Route.CLEAR:
            assert diverted, f"{pid}: a parcel that must be diverted was released"
        if decision.fail_closed:
            assert decision.route is Route.REJECT and decision.reasons and diverted, pid
        elif in_time:
            assert decision.route is route, f"{pid}: policy said {decision.route}, expected {route}"
            assert diverted is decision.route.diverts, f"{pid}: gate did not follow the command"
            on_time += 1
        else:  # a policy decision whose command missed the gate: diverted by default, and recorded
            assert diverted and any(isinstance(e, DeadlineMissed) for e in events[seq]), pid
    return on_time
