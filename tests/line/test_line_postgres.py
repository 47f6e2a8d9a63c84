"""The same line, journaling to PostgreSQL (the server .ci/run names in SMARTSCREEN_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from smartscreen.domain import GateCommanded, ParcelDecided, Route
from smartscreen.journal import Journal
from smartscreen.runtime import ScreeningCentre
from tests.line.helpers import belt, config, wait_until, write_waybills

POSTGRES_URL = os.environ.get("SMARTSCREEN_TEST_POSTGRES_URL")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_line_journals_to_postgresql(tmp_path: Path, tiny_model_dir: Path) -> None:
    if not POSTGRES_URL:
        pytest.skip("needs SMARTSCREEN_TEST_POSTGRES_URL (set by .ci/run)")
    schema = f"line_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    kinds = ["clean", "threat", "clean"]
    b = belt(kinds)
    write_waybills(tmp_path / "waybills.json", [c for p in b.plan.parcels for c in p.barcodes])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir), belts={"L1": b}, journal_url=url).start()
    board = centre.lines["L1"].site.emulated.ioboard  # type: ignore[union-attr]
    try:
        wait_until(
            lambda: len(board.gate_log) == 3 and all(r.diverted is not None for r in board.gate_log.values()),
            timeout_s=60,
            what="every parcel to reach the gate",
        )
    finally:
        centre.stop()
    journal = Journal.open(url)
    try:
        for i, kind in enumerate(kinds, start=1):
            events = [e for _, e in journal.events_for(f"L1-{i}")]
            decided = [e for e in events if isinstance(e, ParcelDecided)]
            assert len(decided) == 1 and len([e for e in events if isinstance(e, GateCommanded)]) == 1
            decision = decided[0].decision
            assert decision.fail_closed or decision.route is (Route.REJECT if kind == "threat" else Route.CLEAR)
            record = journal.parcel(f"L1-{i}")
            assert record is not None and record.route is decision.route
    finally:
        journal.db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        journal.close()
