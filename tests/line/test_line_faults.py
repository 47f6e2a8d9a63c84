"""Fault tests: each ends in fail-closed decisions with reasons, and no journal record is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from smartscreen.detection.engine import OnnxDetector
from smartscreen.domain import Detections, ParcelScanned, ReasonCode, RenderedScan, Route
from smartscreen.gate.drivers import free_tcp_port
from smartscreen.journal import Journal
from smartscreen.runtime import ScreeningCentre
from tests.line.helpers import belt, check_gate_outcomes, config, decisions_and_commands, wait_until, write_waybills

pytestmark = pytest.mark.slow


def run_board_line(
    tmp_path: Path,
    kinds: list[str],
    cfg_kw: dict[str, str],
    detector: object | None = None,
    during: object | None = None,
) -> tuple[ScreeningCentre, dict[int, object]]:
    b = belt(kinds)
    write_waybills(tmp_path / "waybills.json", [c for p in b.plan.parcels for c in p.barcodes])
    centre = ScreeningCentre(config(tmp_path, **cfg_kw), detector=detector, belts={"L1": b}).start()  # type: ignore[arg-type]
    board = centre.lines["L1"].site.emulated.ioboard  # type: ignore[union-attr]
    stop = threading.Event()
    helper = None
    if during is not None:
        helper = threading.Thread(target=during, args=(centre, stop), daemon=True)  # type: ignore[arg-type]
        helper.start()
    try:
        wait_until(
            lambda: len(board.gate_log) == len(kinds) and all(r.diverted is not None for r in board.gate_log.values()),
            timeout_s=60,
            what="every parcel to reach the gate",
        )
    finally:
        stop.set()
        if helper is not None:
            helper.join()
        centre.stop()
    return centre, dict(board.gate_log)


def assert_one_record_each(tmp_path: Path, n: int) -> dict[str, object]:
    journaled = decisions_and_commands(tmp_path, [f"L1-{i}" for i in range(1, n + 1)])
    for pid, (decided, commanded) in journaled.items():
        assert len(decided) == 1, f"{pid}: {len(decided)} decisions journaled"
        assert len(commanded) <= 1, f"{pid}: {len(commanded)} gate commands"
    return journaled  # type: ignore[return-value]


class StalledDetector:
    """Wraps the real detector and hangs like a wedged inference session."""

    def __init__(self, inner: OnnxDetector, stall_s: float) -> None:
        self._inner = inner
        self._stall_s = stall_s
        self.released = threading.Event()

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._inner.class_names

    def detect(self, scans: Sequence[RenderedScan]) -> list[Detections]:
        self.released.wait(self._stall_s)
        return self._inner.detect(scans)


def test_stalled_detector_fails_closed(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean", "clean", "threat", "clean"]
    detector = StalledDetector(OnnxDetector.from_package(tiny_model_dir, intra_op_threads=1), stall_s=30)
    try:
        _, log = run_board_line(tmp_path, kinds, {"package": tiny_model_dir}, detector=detector)
    finally:
        detector.released.set()
    assert all(r.diverted for r in log.values())  # type: ignore[attr-defined]
    for pid, (decided, _) in assert_one_record_each(tmp_path, len(kinds)).items():
        decision = decided[0].decision  # type: ignore[index]
        assert decision.route is Route.REJECT and decision.fail_closed, pid
        assert {r.code for r in decision.reasons} & {ReasonCode.DETECTOR_ERROR, ReasonCode.DEADLINE_MISSED}


def test_packet_loss_marks_scans_incomplete_and_fails_closed(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean"] * 4
    _, log = run_board_line(tmp_path, kinds, {"package": tiny_model_dir, "scanner_options": "&loss=0.2"})
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        scanned = {
            f"L1-{i}": [e for _, e in journal.events_for(f"L1-{i}") if isinstance(e, ParcelScanned)]
            for i in range(1, len(kinds) + 1)
        }
    finally:
        journal.close()
    journaled = assert_one_record_each(tmp_path, len(kinds))
    incomplete = 0
    for i in range(1, len(kinds) + 1):
        pid = f"L1-{i}"
        decision = journaled[pid][0][0].decision  # type: ignore[index]
        scans = scanned[pid]
        if not scans or not scans[0].complete:
            incomplete += 1
            assert decision.route is Route.REJECT and decision.fail_closed
            assert log[i].diverted  # type: ignore[attr-defined]
        if scans and not scans[0].complete:  # the fallback may come first on an overloaded machine
            codes = {r.code for r in decision.reasons}
            assert ReasonCode.INCOMPLETE_SCAN in codes or codes == {ReasonCode.DEADLINE_MISSED}
    assert incomplete >= 1  # 20% loss cannot all be repaired by resends


def test_serial_garbage_is_skipped_and_the_line_keeps_deciding(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean", "threat", "clean", "threat"]

    bad_frames: list[int] = []

    def noise(centre: ScreeningCentre, stop: threading.Event) -> None:
        board = centre.lines["L1"].site.emulated.ioboard  # type: ignore[union-attr]
        junk = bytes(range(1, 200)) + b"\x00\x13\x37\x00garbage\x00"
        while not stop.wait(0.05):
            board.inject_garbage(junk)
        bad_frames.append(centre.lines["L1"].line._io.decoder_stats.frames_bad)  # type: ignore[attr-defined]

    _, log = run_board_line(tmp_path, kinds, {"package": tiny_model_dir}, during=noise)
    assert bad_frames and bad_frames[0] > 0  # the host saw the garbage, skipped it and resynchronised
    expected = {i: Route.REJECT if kind == "threat" else Route.CLEAR for i, kind in enumerate(kinds, start=1)}
    reached = {i: (bool(r.diverted), r.command_before_gate) for i, r in log.items()}  # type: ignore[attr-defined]
    check_gate_outcomes(tmp_path, "L1", expected, reached)


def test_waybill_service_down_fails_closed(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean", "clean", "threat"]
    url = f"http://127.0.0.1:{free_tcp_port()}"
    _, log = run_board_line(tmp_path, kinds, {"package": tiny_model_dir, "waybill_url": url})
    assert all(r.diverted for r in log.values())  # type: ignore[attr-defined]
    for pid, (decided, _) in assert_one_record_each(tmp_path, len(kinds)).items():
        decision = decided[0].decision  # type: ignore[index]
        codes = {r.code for r in decision.reasons}
        assert decision.fail_closed, pid
        assert ReasonCode.WAYBILL_SERVICE_ERROR in codes or codes == {ReasonCode.DEADLINE_MISSED}, pid


def test_gate_link_down_fails_closed(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean", "clean", "threat"]
    b = belt(kinds)
    write_waybills(tmp_path / "waybills.json", [c for p in b.plan.parcels for c in p.barcodes])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir, gate="plc-sim://"), belts={"L1": b})
    centre.start()
    plc = centre.lines["L1"].site.plc  # type: ignore[union-attr]
    assert plc is not None
    plc.paused = True  # the PLC freezes: its heartbeat counter stops
    try:
        assert plc.wait_for(lambda: len(plc.results) == len(kinds), timeout_s=60)
    finally:
        centre.stop()
    assert all(r.route is Route.REJECT and not r.commanded for r in plc.results.values())
    for pid, (decided, commanded) in assert_one_record_each(tmp_path, len(kinds)).items():
        decision = decided[0].decision  # type: ignore[index]
        assert decision.fail_closed and decision.reasons[0].code is ReasonCode.GATE_LINK_DOWN, pid
        assert not commanded


def test_journal_keeps_every_parcel_of_a_busy_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Two lines into one journal: every parcel that reached a gate has its entry, decision and command."""
    kinds = ["clean", "threat", "clean"]
    b1, b2 = belt(kinds), belt(kinds)
    write_waybills(tmp_path / "waybills.json", [c for p in b1.plan.parcels for c in p.barcodes])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir, lines=2), belts={"L1": b1, "L2": b2}).start()
    boards = [centre.lines[f"L{i}"].site.emulated.ioboard for i in (1, 2)]  # type: ignore[union-attr]
    try:
        wait_until(
            lambda: all(
                len(b.gate_log) == 3 and all(r.diverted is not None for r in b.gate_log.values()) for b in boards
            ),
            timeout_s=60,
            what="both lines to finish",
        )
        time.sleep(0.2)
    finally:
        centre.stop()
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        for line in ("L1", "L2"):
            for i in range(1, 4):
                record = journal.parcel(f"{line}-{i}")
                assert record is not None and record.line_id == line and record.centre_id == "TEST"
                assert record.route is not None and record.gate_status in ("acknowledged", "missed", "refused")
    finally:
        journal.close()
