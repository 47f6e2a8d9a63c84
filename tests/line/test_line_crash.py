"""kill -9 mid-run and restart: nothing that reached the gate is missing from the journal, and the line resumes.

The emulated scanner and I/O board run in this test process; ``smartscreen run`` runs in a child
process connected to them over loopback (GigE Vision) and a pseudo-terminal (serial), so the
hardware side keeps going while the runtime is killed, exactly as on a real line.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.emulate import EmulatedLine
from smartscreen.domain import DeadlineMissed, GateCommanded, ParcelDecided
from smartscreen.journal import Journal
from tests.line.helpers import CHANNELS, SCANNER_TO_GATE_MM, belt, wait_until, write_waybills

pytestmark = pytest.mark.slow


def acknowledged(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT COUNT(*) FROM journal_parcels WHERE gate_status = 'acknowledged'").fetchone()
        except sqlite3.OperationalError:  # tables not created yet
            return 0
    return int(row[0])


def start_runtime(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "smartscreen", "run", "--config", str(config), "--summary-every", "1"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_kill_9_and_restart_loses_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    b = belt(["clean", "threat", "clean"] * 20)
    write_waybills(tmp_path / "waybills.json", [c for p in b.plan.parcels for c in p.barcodes])
    emu = EmulatedLine(b.plan, repeat=True)  # the belt keeps running however long the restart takes
    emu.start()
    db = tmp_path / "journal.db"
    config = tmp_path / "line.yaml"
    config.write_text(
        f"""
centre: {{id: CRASH}}
lines:
  - id: L1
    scanner: "{emu.scanner_url}"
    io_board: "pty://{emu.io_url}"
    gate: "ioboard://"
    geometry: {{channels: {CHANNELS}, kvp: 140}}
    scanner_to_gate_mm: {SCANNER_TO_GATE_MM}
    barcode_to_scanner_mm: 1500
    actuator_margin_ms: 100
detector: {{package: "{tiny_model_dir}", max_wait_ms: 5, timeout_ms: 600}}
journal: {{url: "sqlite:///{db}", image_dir: "{tmp_path / "images"}"}}
waybill: {{url: "file://{tmp_path / "waybills.json"}"}}
runtime: {{drain_s: 3, connect_timeout_s: 20}}
""",
        encoding="utf-8",
    )
    log = tmp_path / "runtime.log"
    board = emu.ioboard
    try:
        first = start_runtime(config, log)
        wait_until(lambda: acknowledged(db) >= 3, 60, "three acknowledged parcels")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        commanded_before = {seq for seq, r in board.gate_log.items() if r.command_sequence is not None}
        acked_before = acknowledged(db)
        assert commanded_before

        journal = Journal.open(f"sqlite:///{db}")
        try:
            for seq in commanded_before:  # written ahead of every command: the kill cannot lose them
                events = [e for _, e in journal.events_for(f"L1-{seq}")]
                assert any(isinstance(e, GateCommanded) for e in events), f"L1-{seq} lost its command record"
                assert any(isinstance(e, ParcelDecided) for e in events)
        finally:
            journal.close()

        # parcels the journal holds without a gate outcome at the kill (zero is possible: entries are
        # queued without waiting for the disk, so a parcel entered just before the kill may not be there)
        with sqlite3.connect(db) as conn:
            in_flight = {
                str(pid)
                for (pid,) in conn.execute(
                    "SELECT parcel_id FROM journal_parcels WHERE gate_status IN ('pending', 'commanded')"
                )
            }

        second = start_runtime(config, log)
        wait_until(lambda: acknowledged(db) >= acked_before + 2, 90, "the restarted line to decide parcels")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        for proc in ("first", "second"):
            p = locals().get(proc)
            if isinstance(p, subprocess.Popen) and p.poll() is None:
                p.kill()
        emu.stop()

    output = log.read_text(errors="replace")
    if in_flight:
        assert f"recovered the journal: {len(in_flight)} parcels" in output
    else:
        assert "recovered the journal" not in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        open_rows = conn.execute(
            "SELECT parcel_id FROM journal_parcels WHERE gate_status IN ('pending', 'commanded') OR route IS NULL"
        ).fetchall()
    assert not open_rows, f"parcels left without a recorded outcome: {open_rows}"
    journal = Journal.open(f"sqlite:///{db}")
    try:
        restarted = [
            pid
            for (pid,) in journal.db.query("SELECT parcel_id FROM journal_parcels", ())
            if any(isinstance(e, DeadlineMissed) and e.stage == "restart" for _, e in journal.events_for(str(pid)))
        ]
    finally:
        journal.close()
    assert set(restarted) == in_flight  # exactly the parcels in flight at the kill were closed fail-closed
