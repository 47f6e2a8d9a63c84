"""Images (PNG layers, caching), threat image projection and DICOS export through the API."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pydicom
import pytest

from smartscreen.domain.decision import Route
from smartscreen.domain.render import MaterialClass
from tests.api.conftest import Env


def _png(data: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None
    return image


@pytest.mark.parametrize("layer", ["pseudo", "high", "low", "material", "boxes"])
def test_layers_render_from_the_stored_raw_scan(env: Env, layer: str) -> None:
    pid = env.parcels[0]  # stored as a raw scan: rendered through the imaging chain
    r = env.client.get(f"/api/parcels/{pid}/images/{layer}.png", headers=env.auth("op1"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = _png(r.content)
    shape = env.client.get(f"/api/parcels/{pid}", headers=env.auth("op1")).json()["shape_hw"]
    assert list(image.shape[:2]) == shape
    if layer == "boxes":
        assert image.shape[2] == 4  # transparent overlay
        assert image[:, :, 3].max() == 255 and (image[:, :, 3] == 0).mean() > 0.5
        assert image[30, 20:60, 3].max() == 255  # the detector box's top edge (y = 30, x = 20..60)
    else:
        assert image.ndim == 3 and image.std() > 1.0  # a real picture, not a blank canvas
    if layer in ("high", "low"):
        assert (image[..., 0] == image[..., 1]).all()  # grey


def test_material_layer_uses_class_colours(env: Env) -> None:
    from smartscreen.review.render import MATERIAL_RGB

    pid = env.parcels[3]  # stored as a rendered scan
    image = _png(env.client.get(f"/api/parcels/{pid}/images/material.png", headers=env.auth("op1")).content)
    rgb = {tuple(int(v) for v in px[::-1]) for px in image.reshape(-1, 3)}
    assert MATERIAL_RGB[MaterialClass.METAL] in rgb and MATERIAL_RGB[MaterialClass.ORGANIC] in rgb


def test_images_are_cacheable_by_content_hash(env: Env) -> None:
    url = f"/api/parcels/{env.parcels[0]}/images/pseudo.png"
    first = env.client.get(url, headers=env.auth("op1"))
    etag = first.headers["etag"]
    assert "immutable" in first.headers["cache-control"] and "private" in first.headers["cache-control"]
    again = env.client.get(url, headers={**env.auth("op2"), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # drawn boxes change when a verdict adds one: their tag changes too
    boxed = f"{url}?boxes=true"
    tag1 = env.client.get(boxed, headers=env.auth("op1")).headers["etag"]
    box = {"class_name": "knife", "x1": 70, "y1": 5, "x2": 100, "y2": 25}
    env.client.post(
        f"/api/parcels/{env.parcels[0]}/verdicts",
        json={"kind": "threat_confirmed", "boxes": [box]},
        headers=env.auth("op1"),
    )
    after = env.client.get(boxed, headers={**env.auth("op1"), "If-None-Match": tag1})
    assert after.status_code == 200 and after.headers["etag"] != tag1
    image = _png(after.content)
    assert tuple(image[5, 85]) != tuple(_png(first.content)[5, 85])  # the operator's box is drawn


def _enable_tip(env: Env, user: str = "op1", probability: float = 1.0) -> None:
    r = env.client.put(
        f"/api/tip/operators/{user}", json={"enabled": True, "probability": probability}, headers=env.auth("sup1")
    )
    assert r.status_code == 200 and r.json()["updated_by"] == "sup1"


def test_tip_shows_a_projected_threat_as_a_normal_case_and_never_touches_the_real_parcel(env: Env) -> None:
    journal = env.service.journal
    source_before = journal.parcel("L1-2000")
    events_before = journal.event_count()
    _enable_tip(env)
    # a real verdict by op1 rolls the TIP dice (p = 1): a TIP case joins op1's queue, first
    env.client.post(f"/api/parcels/{env.parcels[0]}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    queue = env.client.get("/api/queue", headers=env.auth("op1")).json()["items"]
    tip_id = queue[0]["case_id"]
    assert tip_id not in env.parcels and tip_id.startswith("L1-")  # looks like any parcel of the line
    assert queue[0]["review_status"] == "pending"
    # only op1 sees it
    assert tip_id not in [i["case_id"] for i in env.client.get("/api/queue", headers=env.auth("op2")).json()["items"]]
    assert env.client.get(f"/api/parcels/{tip_id}", headers=env.auth("op2")).status_code == 404
    assert env.client.get(f"/api/parcels/{tip_id}", headers=env.auth("sup1")).status_code == 404
    case = env.client.get(f"/api/parcels/{tip_id}", headers=env.auth("op1")).json()
    assert case["detections"] == [] and case["verdicts"] == []
    assert case["waybill"]["tracking_no"] == env.service.journal.parcel("L1-2000").tracking_no  # type: ignore[union-attr]
    assert 15 <= case["waited_s"] <= 120  # not a tell-tale 0 s
    tip_png = _png(env.client.get(f"/api/parcels/{tip_id}/images/pseudo.png", headers=env.auth("op1")).content)
    # the projection was done in material space on the clean parcel's raw scan: same size, different content
    event = env.service.tip.event(tip_id)
    assert event is not None and event.source_parcel_id == "L1-2000"
    clean = env.service.scan(env.service.resolve(env.service.accounts.get("op1"), "L1-2000"))  # type: ignore[arg-type]
    assert tip_png.shape[:2] == clean.shape_hw
    x1, y1, x2, y2 = (int(v) for v in event.box_xyxy)
    inside_tip = tip_png[y1:y2, x1:x2].astype(int)
    inside_clean = clean.rgb[y1:y2, x1:x2, ::-1].astype(int)
    assert np.abs(inside_tip - inside_clean).mean() > 5.0
    # the verdict tells the operator it was a test, and records a hit with the response time
    box = {"class_name": event.threat_class, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
    r = env.client.post(
        f"/api/parcels/{tip_id}/verdicts", json={"kind": "threat_confirmed", "boxes": [box]}, headers=env.auth("op1")
    )
    assert r.status_code == 201
    result = r.json()
    assert result["verdict"] is None and result["tip"]["was_test"] is True
    assert result["tip"]["outcome"] == "hit" and result["tip"]["iou"] == pytest.approx(1.0)
    assert result["tip"]["response_ms"] >= 0 and "test" in result["message"]
    again = env.client.post(f"/api/parcels/{tip_id}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    assert again.status_code == 409
    # the real parcel and the journal are untouched (only op1's real verdict was appended)
    assert journal.parcel("L1-2000") == source_before
    assert journal.event_count() == events_before + 1
    assert journal.parcel(tip_id) is None and journal.events_for(tip_id) == []


def test_tip_miss_and_detection_rate_report(env: Env) -> None:
    _enable_tip(env, "op1", 0.0)  # enabled, but cases are forced by the supervisor here
    op1 = env.service.accounts.get("op1")
    assert op1 is not None
    results = []
    for kind in ("false_alarm", "needs_opening", "false_alarm"):
        r = env.client.post("/api/tip/operators/op1/project", json={"threat_class": "gun"}, headers=env.auth("sup1"))
        assert r.status_code == 201
        case_id = r.json()["case_id"]
        out = env.client.post(f"/api/parcels/{case_id}/verdicts", json={"kind": kind}, headers=env.auth("op1")).json()
        results.append(out["tip"]["outcome"])
    assert results == ["miss", "hit", "miss"]
    report = {r["operator_id"]: r for r in env.client.get("/api/tip/report", headers=env.auth("sup1")).json()}
    assert (report["op1"]["projected"], report["op1"]["hits"], report["op1"]["misses"]) == (3, 1, 2)
    assert report["op1"]["detection_rate"] == pytest.approx(1 / 3)
    assert report["op2"]["projected"] == 0 and report["op2"]["detection_rate"] is None
    assert env.service.verdicts.operator_stats("c1") == []  # TIP verdicts are not parcel verdicts
    settings = {s["username"]: s for s in env.client.get("/api/tip/operators", headers=env.auth("sup1")).json()}
    assert settings["op1"]["enabled"] is True and settings["op2"]["enabled"] is False


def test_tip_disabled_means_no_tip(env: Env) -> None:
    for pid in env.parcels[:3]:
        env.client.post(f"/api/parcels/{pid}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    assert env.service.tip.pending_for("op1") == []


def test_dicos_export_round_trips(env: Env) -> None:
    pid = env.parcels[0]
    box = {"class_name": "knife", "x1": 22, "y1": 31, "x2": 58, "y2": 69}
    env.client.post(
        f"/api/parcels/{pid}/verdicts", json={"kind": "threat_confirmed", "boxes": [box]}, headers=env.auth("op1")
    )
    r = env.client.get(f"/api/parcels/{pid}/dicos", headers=env.auth("sup1"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    files = {name.split("/")[-1]: pydicom.dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist()}
    assert set(files) == {"dx_high.dcm", "dx_low.dcm", "tdr_machine.dcm", "tdr_operator.dcm"}
    raw = np.load(io.BytesIO(env.service.images.get(env.service.journal.parcel(pid).raw_sha256)))  # type: ignore[union-attr]
    high, low = files["dx_high.dcm"], files["dx_low.dcm"]
    assert high.SOPClassUID == "1.2.840.10008.5.1.4.1.1.501.2.2" and high.PresentationIntentType == "FOR PROCESSING"
    assert np.array_equal(high.pixel_array, raw["high"]) and np.array_equal(low.pixel_array, raw["low"])
    assert (
        high.file_meta[0x00020004].value == "V03"
        and high[0x00080118].VR == "CS"
        and high[0x00080118].value == "MACHINE"
    )
    assert high[0x00082108].value == "LHS" and high.OOIType == "BAGGAGE"
    tracking = env.client.get(f"/api/parcels/{pid}", headers=env.auth("sup1")).json()["tracking_no"]
    assert high.PatientID == tracking and high.TypeOfPatientID == "BARCODE" and high.IssuerOfPatientID == "SF"
    machine = files["tdr_machine.dcm"]
    assert machine.SOPClassUID == "1.2.840.10008.5.1.4.1.1.501.3" and machine.TDRType == "MACHINE"
    assert machine.AlarmDecision == "ALARM" and machine.NumberOfTotalObjects == 1
    assert machine[0x40101075].VR == "FD" and machine[0x40101075].value > 0
    pto = machine.ThreatSequence[0]
    assessment = pto.ATDAssessmentSequence[0]
    assert (assessment.ThreatCategory, assessment.ThreatCategoryDescription) == ("PI", "knife")
    assert assessment.ATDAssessmentProbability == pytest.approx(0.91, abs=1e-6)
    roi = pto.PTORepresentationSequence[0].ThreatROIVoxelSequence[0]
    assert list(roi.ThreatROIBase)[:2] == [20.0, 30.0] and list(roi.ThreatROIExtents)[:2] == [40.0, 40.0]
    refs = {ref.ReferencedSOPInstanceUID for ref in pto.PTORepresentationSequence[0].ReferencedInstanceSequence}
    assert refs == {high.SOPInstanceUID, low.SOPInstanceUID}
    assert pto[0x40101080].value and pto[0x40101081].value  # PTO processing start and end times
    operator = files["tdr_operator.dcm"]
    assert operator.TDRType == "OPERATOR" and operator.AlarmDecision == "ALARM"
    op_roi = operator.ThreatSequence[0].PTORepresentationSequence[0].ThreatROIVoxelSequence[0]
    assert list(op_roi.ThreatROIBase)[:2] == [22.0, 31.0]
    assert "operator=op1" in list(operator.ThreatDetectionAlgorithmAndVersion)


def test_dicos_of_a_cleared_parcel_says_clear(env: Env) -> None:
    record = env.service.journal.parcel("L1-2000")
    assert record is not None and record.route is Route.CLEAR
    r = env.client.get("/api/parcels/L1-2000/dicos", headers=env.auth("sup1"))
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = [n for n in archive.namelist() if n.endswith("tdr_machine.dcm")]
    tdr = pydicom.dcmread(io.BytesIO(archive.read(names[0])))
    assert tdr.AlarmDecision == "CLEAR" and tdr.NumberOfTotalObjects == 0
    assert not any(n.endswith("tdr_operator.dcm") for n in archive.namelist())
