from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from smartscreen.domain import (
    BarcodeMatch,
    DeadlineMissed,
    Decision,
    DeclaredItem,
    Detections,
    GateAcknowledged,
    GateCommanded,
    OperatorVerdict,
    ParcelDecided,
    ParcelDetected,
    ParcelEntered,
    ParcelEvent,
    ParcelScanned,
    PersonalData,
    Reason,
    ReasonCode,
    RiskAssessment,
    Route,
    VerdictBox,
    VerdictKind,
    Waybill,
    WaybillMatched,
)
from smartscreen.errors import StorageError
from smartscreen.journal import FsImageStore, Journal, ParcelQuery
from smartscreen.journal.codec import decode_event, encode_event

SHA = "ab" * 32


def parcel_events(
    pid: str, *, line: str = "L1", centre: str = "C1", t0: int = 1_000, threat: bool = True
) -> list[ParcelEvent]:
    det = Detections(
        xyxy=np.array([[10, 20, 50, 80]], np.float32) if threat else np.zeros((0, 4), np.float32),
        scores=np.array([0.91], np.float32) if threat else np.zeros(0, np.float32),
        class_ids=np.array([1], np.int32) if threat else np.zeros(0, np.int32),
        class_names=("gun", "knife"),
        model_id="m@1",
    )
    reasons = (Reason(ReasonCode.PROHIBITED_ITEM, "knife 0.91", 0.91),) if threat else ()
    route = Route.REJECT if threat else Route.CLEAR
    waybill = Waybill(
        tracking_no=f"SF{pid}",
        carrier_code="SF",
        declared_items=(DeclaredItem("clothes"),),
        declared_weight_g=800,
        pii=PersonalData(sender_name="李四", sender_phone="13912345678"),
    )
    return [
        ParcelEntered(pid, centre, line, t0, 100, 10.0),
        ParcelScanned(pid, line, t0 + 1, (300, 1024), True, 0, False, SHA, SHA),
        WaybillMatched(pid, t0 + 2, BarcodeMatch.MATCHED, f"SF{pid}", True, waybill),
        ParcelDetected(pid, t0 + 3, det, inference_ms=12.5),
        ParcelDecided(
            pid,
            t0 + 4,
            RiskAssessment(pid, 0.91 if threat else 0.0, reasons, "p1"),
            Decision(pid, route, reasons, "p1", t0 + 4),
        ),
        GateCommanded(pid, t0 + 5, route, 7, t0 + 2_000),
        GateAcknowledged(pid, t0 + 6, 7, True, route),
    ]


def test_codec_round_trips_every_event_type() -> None:
    events = [
        *parcel_events("p1"),
        DeadlineMissed("p1", 9, "gate", 12.5),
        OperatorVerdict("p1", 10, "op1", VerdictKind.THREAT_CONFIRMED, (VerdictBox("knife", 1, 2, 3, 4),)),
    ]
    for event in events:
        decoded = decode_event(*encode_event(event))
        assert type(decoded) is type(event)
        if isinstance(event, ParcelDetected):
            assert (
                isinstance(decoded, ParcelDetected) and decoded.detections is not None and event.detections is not None
            )
            np.testing.assert_array_equal(decoded.detections.xyxy, event.detections.xyxy)
            assert decoded.detections.labels() == event.detections.labels()
        elif isinstance(event, WaybillMatched):
            assert isinstance(decoded, WaybillMatched) and decoded.waybill is not None
            assert decoded.waybill.declared_items == event.waybill.declared_items  # type: ignore[union-attr]
        else:
            assert decoded == event


def test_codec_masks_personal_data_and_rejects_corrupt_payload() -> None:
    event = parcel_events("p1")[2]
    _, payload = encode_event(event)
    assert "李四" not in payload and "13912345678" not in payload and "5678" in payload
    with pytest.raises(StorageError, match="corrupt"):
        decode_event("ParcelEntered", '{"parcel_id": "x"}')
    with pytest.raises(StorageError, match="unknown"):
        decode_event("Nope", "{}")


def test_journal_projection_follows_events(journal: Journal) -> None:
    journal.append_many(parcel_events("p1", t0=1_000))
    journal.append_many(parcel_events("p2", t0=2_000, threat=False))
    journal.append_many(parcel_events("p3", t0=3_000, line="L2"))
    rec = journal.parcel("p1")
    assert rec is not None
    assert rec.route is Route.REJECT and rec.review_status == "pending" and rec.gate_status == "acknowledged"
    assert rec.detected_classes == ("knife",) and rec.reason_codes == ("prohibited_item",)
    assert rec.tracking_no == "SFp1" and rec.render_sha256 == SHA and rec.max_score == pytest.approx(0.91, abs=1e-6)
    clear = journal.parcel("p2")
    assert clear is not None and clear.route is Route.CLEAR and clear.review_status == "none"
    pending = journal.parcels(ParcelQuery(centre_id="C1", review_status="pending"))
    assert [r.parcel_id for r in pending] == ["p1", "p3"]
    assert [r.parcel_id for r in journal.parcels(ParcelQuery(line_ids=("L2",)))] == ["p3"]
    assert [r.parcel_id for r in journal.parcels(ParcelQuery(class_name="knife", newest_first=True))] == ["p3", "p1"]
    assert journal.parcels(ParcelQuery(class_name="kni")) == []
    assert journal.count(ParcelQuery(centre_id="other")) == 0


def test_verdicts_are_appended_never_overwritten(journal: Journal) -> None:
    journal.append_many(parcel_events("p1"))
    first = journal.append(OperatorVerdict("p1", 5_000, "op1", VerdictKind.FALSE_ALARM))
    second = journal.append(OperatorVerdict("p1", 6_000, "sup1", VerdictKind.THREAT_CONFIRMED, supersedes_id=first))
    verdicts = journal.verdicts_for("p1")
    assert [seq for seq, _ in verdicts] == [first, second]
    assert verdicts[1][1].supersedes_id == first
    rec = journal.parcel("p1")
    assert rec is not None and rec.review_status == "reviewed" and rec.last_verdict == "threat_confirmed"
    assert len(journal.events_for("p1")) == 9


def test_failed_transaction_records_nothing(journal: Journal) -> None:
    journal.append_many(parcel_events("p1"))
    before = journal.event_count()

    class NotAnEvent:
        parcel_id = "p9"
        at_ns = 0

    with pytest.raises(StorageError):
        journal.append_many([parcel_events("p9")[0], NotAnEvent()])  # type: ignore[list-item]
    assert journal.event_count() == before and journal.parcel("p9") is None


def test_image_store_content_addressed_and_rejects_paths(tmp_path: Path) -> None:
    store = FsImageStore(tmp_path / "img")
    digest = store.put(b"png bytes")
    assert store.put(b"png bytes") == digest and store.get(digest) == b"png bytes" and digest in store
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31, ""):
        with pytest.raises(KeyError):
            store.get(bad)
    with pytest.raises(KeyError):
        store.get("cd" * 32)


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    """A writer prints each sequence number after append() returns; kill -9 it mid-run; all printed ones are there."""
    url = f"sqlite:///{tmp_path}/journal.db"
    writer = textwrap.dedent(
        f"""
        import sys
        from smartscreen.domain import ParcelEntered
        from smartscreen.journal import Journal
        j = Journal.open({url!r})
        i = 0
        while True:
            seq = j.append(ParcelEntered(f"p{{i}}", "C1", "L1", i, i, 0.0))
            print(seq, flush=True)
            i += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = [int(proc.stdout.readline()) for _ in range(200)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [int(line) for line in proc.stdout.read().split()]
    journal = Journal.open(url)
    stored = {row[0] for row in journal.db.query("SELECT seq FROM journal_events")}
    assert set(acked) <= stored
    # and the journal accepts writes again after the crash
    assert journal.append(ParcelEntered("after", "C1", "L1", 1, 1, 0.0)) > max(acked)
    journal.close()
