"""Journal fixtures for the API tests: parcels written through the real journal and image store."""

from __future__ import annotations

import io

import numpy as np

from smartscreen.domain.decision import Decision, Reason, ReasonCode, RiskAssessment, Route
from smartscreen.domain.detections import Detections
from smartscreen.domain.events import (
    GateAcknowledged,
    GateCommanded,
    ParcelDecided,
    ParcelDetected,
    ParcelEntered,
    ParcelEvent,
    ParcelScanned,
    WaybillMatched,
)
from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.domain.waybill import BarcodeMatch, DeclaredItem, PersonalData, Waybill
from smartscreen.journal import FsImageStore, Journal
from smartscreen.review.scans import encode_rendered

H, W = 96, 128
SECRET_PHONE = "13812345678"
SECRET_NAME = "Zhang Wei"


def rendered_scan(seed: int) -> RenderedScan:
    """A small rendered scan with a metal block and an organic block (stands in for the imaging chain)."""
    rng = np.random.default_rng(seed)
    material = np.zeros((H, W), np.uint8)
    att_high = np.zeros((H, W), np.float32)
    material[10:80, 10:110] = MaterialClass.ORGANIC
    att_high[10:80, 10:110] = 0.5
    y, x = int(rng.integers(20, 50)), int(rng.integers(20, 80))
    material[y : y + 20, x : x + 25] = MaterialClass.METAL
    att_high[y : y + 20, x : x + 25] = 3.0
    rgb = np.full((H, W, 3), 255, np.uint8)
    rgb[material == MaterialClass.ORGANIC] = (235, 140, 30)
    rgb[material == MaterialClass.METAL] = (40, 90, 220)
    return RenderedScan(
        rgb=rgb,
        attenuation_high=att_high,
        attenuation_low=att_high * 1.4,
        zeff=np.where(material > 0, 7.0, 0.0).astype(np.float32),
        material=material,
    )


def parcel_events(
    parcel_id: str,
    sha: str,
    *,
    centre_id: str = "c1",
    line_id: str = "L1",
    entered_at_ns: int,
    route: Route = Route.REJECT,
    class_name: str = "knife",
    score: float = 0.91,
    shape: tuple[int, int] = (H, W),
) -> list[ParcelEvent]:
    """The seven events a line journals for one parcel (entry to gate acknowledgement)."""
    waybill = Waybill(
        tracking_no=f"SF{entered_at_ns % 10**10:010d}",
        carrier_code="SF",
        declared_items=(DeclaredItem("clothes", "61", 2, 120.0),),
        declared_weight_g=800,
        origin_region_code="440300",
        dest_region_code="110000",
        pii=PersonalData(
            sender_name=SECRET_NAME,
            sender_phone=SECRET_PHONE,
            sender_address="Guangdong Shenzhen Nanshan Keyuan Road 1",
            recipient_name="Li Na",
            recipient_phone="13987654321",
            recipient_address="Beijing Haidian Zhongguancun 5",
        ),
    )
    detections = Detections(
        xyxy=np.array([[20.0, 30.0, 60.0, 70.0]], np.float32),
        scores=np.array([score], np.float32),
        class_ids=np.array([CLASS_NAMES.index(class_name)], np.int32),
        class_names=CLASS_NAMES,
        model_id="smartscreen-yolo11n@1.0.0",
    )
    t = entered_at_ns
    if route is Route.CLEAR:
        decision = Decision(parcel_id, Route.CLEAR, (), "policy-1", t + 300_000_000)
        assessment = RiskAssessment(parcel_id, 0.05, (), "policy-1")
        detections = Detections.empty(CLASS_NAMES, "smartscreen-yolo11n@1.0.0")
    else:
        reason = Reason(ReasonCode.PROHIBITED_ITEM, f"{class_name} {score:.2f}", score)
        decision = Decision(parcel_id, route, (reason,), "policy-1", t + 300_000_000)
        assessment = RiskAssessment(parcel_id, score, (reason,), "policy-1")
    return [
        ParcelEntered(parcel_id, centre_id, line_id, t, 1000, 100.0),
        ParcelScanned(parcel_id, line_id, t + 100_000_000, shape, True, 0, False, sha, sha),
        WaybillMatched(parcel_id, t + 150_000_000, BarcodeMatch.MATCHED, waybill.tracking_no, True, waybill),
        ParcelDetected(parcel_id, t + 250_000_000, detections, "", 42.0),
        ParcelDecided(parcel_id, t + 300_000_000, assessment, decision),
        GateCommanded(parcel_id, t + 310_000_000, route, 1, t + 2_000_000_000),
        GateAcknowledged(parcel_id, t + 320_000_000, 1, True, route),
    ]


def add_parcel(
    journal: Journal,
    images: FsImageStore,
    parcel_id: str,
    *,
    centre_id: str = "c1",
    line_id: str = "L1",
    entered_at_ns: int,
    route: Route = Route.REJECT,
    class_name: str = "knife",
    score: float = 0.91,
    scan_blob: bytes | None = None,
) -> None:
    blob = scan_blob if scan_blob is not None else encode_rendered(rendered_scan(len(parcel_id) + entered_at_ns % 97))
    sha = images.put(blob)
    with np.load(io.BytesIO(blob)) as npz:
        array = npz["high"] if "high" in npz.files else npz["material"]
        shape = (int(array.shape[0]), int(array.shape[1]))
    journal.append_many(
        parcel_events(
            parcel_id,
            sha,
            centre_id=centre_id,
            line_id=line_id,
            entered_at_ns=entered_at_ns,
            route=route,
            class_name=class_name,
            score=score,
            shape=shape,
        )
    )


_RAW_CACHE: dict[tuple[int, bool, int], bytes] = {}


def raw_scan_blob(seed: int, threat: bool = True, channels: int = 160) -> bytes:
    """A raw scan in the project's raw format, simulated by the imaging package (small scanner, cached)."""
    key = (seed, threat, channels)
    if key not in _RAW_CACHE:
        import tempfile
        from pathlib import Path

        from smartscreen.imaging import ParcelSimulator, ScannerParams, raw_meta, write_raw_scan

        params = ScannerParams(channels=channels, scanner_id=f"test-{seed}")
        simulator = ParcelSimulator(params, np.random.default_rng(seed))
        calibration = simulator.calibration(32)
        parcel = simulator.simulate(threat_probability=1.0 if threat else 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scan.npz"
            write_raw_scan(path, parcel.high, parcel.low, calibration, raw_meta(params))
            _RAW_CACHE[key] = path.read_bytes()
    return _RAW_CACHE[key]
