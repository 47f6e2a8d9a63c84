"""End to end over real loopback sockets and pseudo-terminals: GigE Vision scanner emulator,
serial I/O-board emulator, emulated PLC over Modbus TCP, the shipped runtime in between."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smartscreen.domain import DeadlineMissed, GateAcknowledged, ReasonCode, Route, WaybillMatched
from smartscreen.imaging.rawio import read_raw_scan
from smartscreen.journal import FsImageStore, Journal
from smartscreen.runtime import ScreeningCentre
from tests.line.helpers import belt, check_gate_outcomes, config, decisions_and_commands, wait_until, write_waybills

pytestmark = pytest.mark.slow

KINDS = ["clean", "threat", "clean", "threat", "clean", "clean"]


def test_threats_rejected_clean_cleared_one_command_each_via_io_board(tmp_path: Path, tiny_model_dir: Path) -> None:
    b = belt(KINDS)
    write_waybills(tmp_path / "waybills.json", [c for p in b.plan.parcels for c in p.barcodes])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir), belts={"L1": b}).start()
    board = centre.lines["L1"].site.emulated.ioboard  # type: ignore[union-attr]
    try:
        wait_until(
            lambda: len(board.gate_log) == len(KINDS) and all(r.diverted is not None for r in board.gate_log.values()),
            timeout_s=60,
            what="every parcel to reach the gate",
        )
    finally:
        centre.stop()
    expected = {seq: Route.REJECT if threat else Route.CLEAR for seq, threat in enumerate(b.threat_flags, start=1)}
    reached = {seq: (bool(r.diverted), r.command_before_gate) for seq, r in board.gate_log.items()}
    on_time = check_gate_outcomes(tmp_path, "L1", expected, reached)
    assert on_time >= 1  # deciding in time is the norm; the speed target itself is the benchmark's
    journaled = decisions_and_commands(tmp_path, ["L1-2", "L1-4"])
    for pid in ("L1-2", "L1-4"):  # threats: rejected for the prohibited item, or fail-closed
        decision = journaled[pid][0][0].decision
        assert decision.route is Route.REJECT
        assert decision.fail_closed or decision.reasons[0].code is ReasonCode.PROHIBITED_ITEM
    summary = centre.summary()
    assert summary["parcels"] == len(KINDS)
    metrics = centre.metrics.exposition().decode()
    counted = sum(float(v) for v in re.findall(r'smartscreen_parcels_total\{line="L1",route="\w+"\} ([\d.]+)', metrics))
    assert counted == len(KINDS)
    assert "smartscreen_decision_latency_seconds_bucket" in metrics and "smartscreen_queue_depth" in metrics
    assert "smartscreen_deadline_misses_total" in metrics or summary["deadline_misses"] == 0
    assert 'smartscreen_link_up{link="L1/gate"}' in metrics
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        record = journal.parcel("L1-2")
        assert record is not None and record.gate_status in ("acknowledged", "missed") and record.raw_sha256
        # the stored raw scan is the project's raw format: the review service re-renders it from there
        raw = read_raw_scan(FsImageStore(tmp_path / "images").path_for(record.raw_sha256))
        assert raw.shape[1] == 256 and raw.meta["parcel_id"] == "L1-2" and raw.meta["kvp"] == 140
        assert record.render_sha256 and FsImageStore(tmp_path / "images").get(record.render_sha256)[:4] == b"\x89PNG"
        events = [e for _, e in journal.events_for("L1-1")]
        assert any(isinstance(e, GateAcknowledged) for e in events) or any(
            isinstance(e, DeadlineMissed) for e in events
        )
        matched = [e for e in events if isinstance(e, WaybillMatched)]
        assert matched and matched[0].found and matched[0].waybill is not None
        # personal data is stored masked (GB/T 41833-2022), never in clear
        payloads = " ".join(str(row[0]) for row in journal.db.query("SELECT payload FROM journal_events", ()))
        assert "13800001111" not in payloads and "测试人" not in payloads
        assert matched[0].waybill.pii.sender_phone.endswith("1111")
    finally:
        journal.close()


def test_modbus_plc_gate_and_multi_read_no_read(tmp_path: Path, tiny_model_dir: Path) -> None:
    codes = [("A1",), ("B1", "B2"), (), ("A2",), ("A3",)]
    kinds = ["threat", "clean", "clean", "clean", "threat"]
    b = belt(kinds, codes)
    write_waybills(tmp_path / "waybills.json", ["A1", "B1", "B2", "A2", "A3"])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir, gate="plc-sim://?modbus=1"), belts={"L1": b}).start()
    plc = centre.lines["L1"].site.plc  # type: ignore[union-attr]
    assert plc is not None
    try:
        assert plc.wait_for(lambda: len(plc.results) == len(kinds), timeout_s=60)
    finally:
        centre.stop()
    # threat -> reject; multi-read and no-read fail closed -> reject; clean with one read -> clear
    expected = {1: Route.REJECT, 2: Route.REJECT, 3: Route.REJECT, 4: Route.CLEAR, 5: Route.REJECT}
    reached = {k: (r.route.diverts, r.commanded) for k, r in plc.results.items()}
    check_gate_outcomes(tmp_path, "L1", expected, reached)
    journaled = decisions_and_commands(tmp_path, [f"L1-{i}" for i in range(1, 6)])
    codes2 = {r.code for r in journaled["L1-2"][0][0].decision.reasons}
    codes3 = {r.code for r in journaled["L1-3"][0][0].decision.reasons}
    late = {ReasonCode.DEADLINE_MISSED}  # on an overloaded machine the fallback may come first
    assert (ReasonCode.MULTI_READ in codes2 or codes2 <= late) and (ReasonCode.NO_READ in codes3 or codes3 <= late)
    assert journaled["L1-2"][0][0].decision.fail_closed and journaled["L1-3"][0][0].decision.fail_closed
