"""Runtime pieces on their own: journal writer, crash recovery, waybill stage, sim options, bridge adapters."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.assembly import AssembledParcel
from firmware_bridge.messages import BarcodeReadMsg, PhotoEyeEdgeMsg
from smartscreen.config import DetectorConfig
from smartscreen.detection.package import Metrics, load_model_package, update_model_package
from smartscreen.domain import (
    DeadlineMissed,
    Decision,
    GateCommanded,
    ParcelDecided,
    ParcelEntered,
    Route,
    Waybill,
)
from smartscreen.errors import ConfigError, StorageError, WaybillServiceError
from smartscreen.journal import Journal
from smartscreen.risk import load_policy
from smartscreen.runtime.bridge_adapter import barcode_reads, parcel_id_for, parcel_scan, photo_eye
from smartscreen.runtime.centre import bind_policy_to_model, recover_journal
from smartscreen.runtime.emulation import SimOptions
from smartscreen.runtime.journal_writer import JournalWriter
from smartscreen.runtime.waybill_stage import WaybillStage


def entered(pid: str, at: int = 1) -> ParcelEntered:
    return ParcelEntered(pid, "C", "L1", at, 100, 10.0)


def test_journal_writer_group_commits_concurrent_appends(tmp_path: Path) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    writer = JournalWriter(journal).start()
    try:
        seqs: list[list[int]] = []

        def worker(i: int) -> None:
            seqs.append(writer.append([entered(f"L1-{i}")]))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(s[0] for s in seqs) == sorted({s[0] for s in seqs}) and len(seqs) == 20
        assert writer.events_written == 20 and writer.commits <= 20
        assert all(journal.parcel(f"L1-{i}") is not None for i in range(20))
    finally:
        writer.stop()
        journal.close()


def test_journal_writer_reports_failures_to_every_waiter(tmp_path: Path) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    writer = JournalWriter(journal).start()
    journal.db.close()  # storage goes away under the writer
    try:
        with pytest.raises(StorageError):
            writer.append([entered("L1-1")])
        assert writer.errors == 1
    finally:
        writer.stop()
    with pytest.raises(StorageError, match="not running"):
        writer.append([entered("L1-2")])


def test_recovery_closes_parcels_left_open_by_a_crash(tmp_path: Path) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        clear = Decision("L1-2", Route.CLEAR, (), "v", 5)
        journal.append_many(
            [
                entered("L1-1"),  # entered, never decided
                entered("L1-2"),
                ParcelDecided("L1-2", 5, None, clear),
                GateCommanded("L1-2", 6, Route.CLEAR, 1, 10),  # commanded, never acknowledged
            ]
        )
        assert recover_journal(journal, "v") == 2
        one = [e for _, e in journal.events_for("L1-1")]
        decided = [e for e in one if isinstance(e, ParcelDecided)]
        assert decided and decided[0].decision.fail_closed and decided[0].decision.route is Route.REJECT
        assert any(isinstance(e, DeadlineMissed) and e.stage == "restart" for _, e in journal.events_for("L1-2"))
        record = journal.parcel("L1-2")
        assert record is not None and record.gate_status == "missed" and record.route is Route.CLEAR
        assert recover_journal(journal, "v") == 0  # idempotent
    finally:
        journal.close()


class SlowLookup:
    def __init__(self, delay_s: float, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.calls = 0

    def lookup(self, tracking_no: str) -> Waybill | None:
        self.calls += 1
        time.sleep(self.delay_s)
        if self.fail:
            raise WaybillServiceError("service down")
        return Waybill(tracking_no=tracking_no, carrier_code="SF")


def test_waybill_stage_prefetches_and_bounds_the_wait() -> None:
    fast = WaybillStage(SlowLookup(0.0))
    fast.prefetch("A")
    waybill, error = fast.get("A", 1.0)
    assert waybill is not None and waybill.tracking_no == "A" and error == ""
    assert fast.lookup.calls == 1  # type: ignore[attr-defined]
    fast.close()
    slow = WaybillStage(SlowLookup(0.5))
    waybill, error = slow.get("B", 0.05)
    assert waybill is None and "still running" in error and slow.timeouts == 1
    slow.close()
    down = WaybillStage(SlowLookup(0.0, fail=True))
    waybill, error = down.get("C", 1.0)
    assert waybill is None and "service down" in error and down.errors == 1
    down.close()


def test_sim_options_parse_and_reject_unknown_keys() -> None:
    opts = SimOptions.from_url("sim://?seed=7&threat_rate=0.3&loss=0.2&io=tcp&repeat=0")
    assert (opts.seed, opts.threat_rate, opts.loss, opts.io, opts.repeat) == (7, 0.3, 0.2, "tcp", False)
    with pytest.raises(ConfigError, match="unknown sim options"):
        SimOptions.from_url("sim://?sed=7")
    with pytest.raises(ConfigError, match="bad sim option"):
        SimOptions.from_url("sim://?seed=x")


def test_bridge_adapters() -> None:
    edge = photo_eye(PhotoEyeEdgeMsg(0, True, 42, 12345, 99))
    assert edge.parcel_seq == 42 and edge.edge.blocked and edge.edge.encoder_counts == 12345
    assert parcel_id_for("L3", 42) == "L3-42"
    reads = barcode_reads(BarcodeReadMsg(1, ("A", "B"), 500, 7))
    assert [r.code for r in reads] == ["A", "B"] and reads[0].encoder_counts == 500
    assert barcode_reads(BarcodeReadMsg(1, (), 500, 7)) == []
    high = np.ones((10, 16), np.uint16)
    assembled = AssembledParcel(
        parcel_seq=5,
        high=high,
        low=high.copy(),
        first_line_index=100,
        entry_encoder_counts=1000,
        exit_encoder_counts=1160,
        entered_at_ns=123,
        belt_position_mm=120.0,
        line_pitch_mm=1.6,
        missing_lines=((2, 4),),
        truncated=False,
    )
    scan = parcel_scan(assembled, line_id="L1", channel_pitch_mm=1.6)
    assert scan.parcel_id == "L1-5" and not scan.complete and scan.n_missing_lines == 2
    assert scan.entered_at_ns == 123 and scan.belt_position_mm == 120.0


class _OffTaxonomyDetector:
    """A detector that can report a class the risk policy has no rule for."""

    model_id = "elsewhere@1"
    class_names = ("gun", "grenade")

    def detect(self, scans: object) -> list[object]:
        raise AssertionError("the centre must not start screening with this model")


def test_centre_refuses_a_model_whose_classes_the_policy_does_not_cover(tmp_path: Path, tiny_model_dir: Path) -> None:
    from smartscreen.runtime import ScreeningCentre
    from tests.line.helpers import config, write_waybills

    write_waybills(tmp_path / "waybills.json", ["SF0001"])
    centre = ScreeningCentre(config(tmp_path, tiny_model_dir), detector=_OffTaxonomyDetector())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"no rule for the model's classes \['grenade'\]"):
        centre.start()
    assert not centre.lines  # no belt, device or line was started
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")  # released, and still readable
    journal.close()


def test_the_line_binds_the_packages_operating_threshold_and_keeps_detections_down_to_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    package = tmp_path / "package"
    shutil.copytree(tiny_model_dir, package)
    detector = DetectorConfig(package=package, conf_threshold=0.25)
    # no evaluation recorded: `threshold: model` falls back, the detector keeps its own floor
    policy, bound_detector = bind_policy_to_model(load_policy(), detector)
    assert policy.classes["gun"].threshold == policy.model_threshold_fallback
    assert bound_detector.conf_threshold == 0.25
    update_model_package(package, metrics=Metrics(dataset="synthetic [test]", extra={"operating_threshold": 0.18}))
    policy, bound_detector = bind_policy_to_model(load_policy(), detector)
    assert policy.classes["gun"].threshold == policy.classes["firecracker"].threshold == 0.18
    assert bound_detector.conf_threshold == 0.18  # lower than 0.25: what the policy counts must reach it
    # other test-time views than the package's: the recorded threshold was not measured for them
    views = load_model_package(package, check_onnx=False).manifest.tta.mode
    other = DetectorConfig(package=package, tta="hv" if views != "hv" else "none")
    policy, bound_detector = bind_policy_to_model(load_policy(), other)
    assert policy.classes["gun"].threshold == policy.model_threshold_fallback
