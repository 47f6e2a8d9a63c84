"""The standalone emulator entry points, run as integrators run them (subprocesses), plus the port protocols."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.belt_plan import BeltPlan, PlannedParcel
from firmware_bridge.gige_receiver import GigeLineSource
from firmware_bridge.iolink import IoBoardLink
from firmware_bridge.lines import LineKind
from firmware_bridge.messages import BarcodeReadMsg
from smartscreen.domain.ports import IoLink, LineSource

REPO = Path(__file__).resolve().parents[2]


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"emulator printed nothing: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def read_some(info: dict[str, object], n_blocks: int) -> tuple[list[object], list[object]]:
    with IoBoardLink(str(info["io_board"])) as io, GigeLineSource(str(info["scanner"]), packet_size=1500) as src:
        assert isinstance(src, LineSource) and isinstance(io, IoLink)  # the domain ports, structurally
        blocks = [b for b in (src.read_block(3.0) for _ in range(n_blocks)) if b is not None]
        events: list[object] = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not any(isinstance(e, BarcodeReadMsg) for e in events):
            ev = io.poll_event(0.1)
            if ev is not None:
                events.append(ev)
    return blocks, events


def test_python_m_emulate_with_recorded_scans(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = []
    for i in range(2):
        high = rng.integers(0, 65535, (120, 64), dtype=np.uint16)
        path = tmp_path / f"scan{i}.npz"
        np.savez(path, high=high, low=high // 2, barcodes=np.array([f"REC{i}"]))
        files.append(str(path))
    proc, info = start([sys.executable, "-m", "firmware_bridge.emulate", "--scans", *files, "--duration", "8"])
    try:
        assert info["parcels"] == 2 and info["channels"] == 64
        blocks, events = read_some(info, 6)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    kinds = [b.kind for b in blocks]  # type: ignore[attr-defined]
    assert kinds[:2] == [LineKind.DARK, LineKind.AIR] and LineKind.SCAN in kinds
    assert any(isinstance(e, BarcodeReadMsg) and e.codes == ("REC0",) for e in events)


def test_python_m_emulate_rejects_a_bad_scan_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, high=np.zeros((4, 4), dtype=np.float32), low=np.zeros((4, 4), dtype=np.float32))
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_bridge.emulate", "--scans", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "uint16" in proc.stderr


@pytest.mark.slow
def test_smartscreen_emulate_streams_simulated_parcels() -> None:
    exe = Path(sys.executable).with_name("smartscreen")
    proc, info = start([str(exe), "emulate", "--parcels", "1", "--channels", "128", "--duration", "20"])
    try:
        assert info["channels"] == 128
        blocks, _ = read_some(info, 4)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    dark, air = blocks[0], blocks[1]
    assert dark.kind is LineKind.DARK and air.kind is LineKind.AIR  # type: ignore[attr-defined]
    # simulated detector: dark offset well below the air level, and noisy (not a constant row)
    assert dark.high.mean() < air.high.mean()  # type: ignore[attr-defined]
    assert air.high.std() > 0  # type: ignore[attr-defined]


def test_belt_plan_cycles_recorded_reference_lines() -> None:
    air = np.arange(12, dtype=np.uint16).reshape(3, 4)
    plan = BeltPlan(
        (PlannedParcel(np.ones((2, 4), np.uint16), np.ones((2, 4), np.uint16), (), 0.0),),
        air,
        air,
        np.zeros(4, np.uint16),
        np.zeros(4, np.uint16),
    )
    high, _ = plan.lines(1, 4)
    np.testing.assert_array_equal(high[:2], air[[1, 2]])
    with pytest.raises(ValueError, match="uint16"):
        BeltPlan((), air.astype(np.int32), air, air, air)  # type: ignore[arg-type]
