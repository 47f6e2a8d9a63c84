from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartscreen.cli import main
from smartscreen.detection.package import ModelPackage
from tests.detection.test_engine import parcel_image

BLOCK = (300, 120, 500, 320)  # x0, y0, x1, y1


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    rgb = parcel_image(600, 1024, [(*BLOCK, (0, 255, 255))])  # dark in red: class 0
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    d = tmp_path / "in"
    d.mkdir()
    paths = {
        "rgb": d / "rgb.png",
        "jpeg": d / "photo.jpg",
        "grey": d / "grey.png",
        "rgba": d / "alpha.png",
        "deep": d / "deep16.png",
        "corrupt": d / "corrupt.png",
    }
    cv2.imwrite(str(paths["rgb"]), bgr)
    cv2.imwrite(str(paths["jpeg"]), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    grey = rgb[:, :, 0].copy()  # the block is black in the red channel
    cv2.imwrite(str(paths["grey"]), grey)
    rgba = np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:50, :50, 3] = 0  # transparent corner becomes white air
    cv2.imwrite(str(paths["rgba"]), rgba)
    cv2.imwrite(str(paths["deep"]), bgr.astype(np.uint16) * 257)
    paths["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return paths


def _block_found(record: dict[str, object]) -> bool:
    dets = record["detections"]
    assert isinstance(dets, list)
    boxes = np.array([d["box_xyxy"] for d in dets if d["class"] == "baton"])
    if boxes.size == 0:
        return False
    union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
    return bool(np.all(np.abs(union - np.array(BLOCK)) < 40))


def test_detect_writes_one_record_per_image_and_survives_a_corrupt_file(
    tiny_package: ModelPackage, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "result.json"
    ann = tmp_path / "ann"
    missing = tmp_path / "in" / "gone.jpg"
    argv = [
        "detect",
        *(str(p) for p in images.values()),
        str(missing),
        "--model",
        str(tiny_package.directory),
        "--json",
        str(out_json),
        "--out",
        str(ann),
        "--batch",
        "2",
        "--threads",
        "1",
    ]
    assert main(argv) == 1  # some files could not be read
    records = json.loads(out_json.read_text())
    assert [r["image"] for r in records] == [str(p) for p in images.values()] + [str(missing)]
    by_name = {Path(r["image"]).stem: r for r in records}
    for name in ("rgb", "photo", "grey", "alpha", "deep16"):
        r = by_name[name]
        assert set(r) == {"image", "width", "height", "detections"}
        assert (r["width"], r["height"]) == (1024, 600)
        for d in r["detections"]:
            assert set(d) == {"class", "class_id", "score", "box_xyxy"} and len(d["box_xyxy"]) == 4
            assert 0 <= d["score"] <= 1
        assert _block_found(r), name
        assert (ann / f"{Path(r['image']).name}.det.png").is_file()
    assert "not a decodable" in by_name["corrupt"]["error"]
    assert "gone.jpg" in by_name["gone"]["error"]
    err = capsys.readouterr().err
    assert "corrupt.png" in err and "5 image(s) processed" in err and "2 could not be read" in err


def test_detect_prints_json_lines_without_json_file(
    tiny_package: ModelPackage, images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["detect", str(images["rgb"]), "--model", str(tiny_package.directory), "--conf", "0.3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 and _block_found(lines[0])
    assert all(d["score"] > 0.3 for d in lines[0]["detections"])


def test_detect_walks_directories(tiny_package: ModelPackage, images: dict[str, Path], tmp_path: Path) -> None:
    images["corrupt"].unlink()
    out_json = tmp_path / "r.json"
    assert main(["detect", str(tmp_path / "in"), "--model", str(tiny_package.directory), "--json", str(out_json)]) == 0
    assert len(json.loads(out_json.read_text())) == 5


def test_detect_with_a_broken_package_says_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pkg").mkdir()
    assert main(["detect", "x.png", "--model", str(tmp_path / "pkg")]) == 1
    assert "lacks model.yaml and model.onnx" in capsys.readouterr().err


def _write_raw_scan(path: Path) -> tuple[int, int, int, int]:
    """A synthetic raw dual-energy scan: open beam with one dense steel-like block; returns the block's box."""
    imaging = pytest.importorskip("smartscreen.imaging")
    params = imaging.ScannerParams()
    n_ch, n_lines = params.channels, 400
    dark = np.full(n_ch, 1000.0, np.float32)
    air_h = np.full(n_ch, 50000.0, np.float32)
    air_l = np.full(n_ch, 40000.0, np.float32)
    calibration = imaging.Calibration.from_references(dark, dark, air_h, air_l, params.full_scale_adu)
    rng = np.random.default_rng(0)
    high = (air_h + rng.normal(0, 50, (n_lines, n_ch))).astype(np.uint16)
    low = (air_l + rng.normal(0, 50, (n_lines, n_ch))).astype(np.uint16)
    box = (400, 150, 600, 250)
    x0, y0, x1, y1 = box
    high[y0:y1, x0:x1] = 1000 + 49000 * 0.2  # 20 % transmission at high energy
    low[y0:y1, x0:x1] = 1000 + 39000 * 0.05  # 5 % at low energy: a metal
    imaging.write_raw_scan(path, high, low, calibration, imaging.raw_meta(params))
    return box


def test_detect_reads_raw_dual_energy_scans(
    tiny_package: ModelPackage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "scan.npz"
    box = _write_raw_scan(raw)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    assert main(["detect", str(raw), str(broken), "--model", str(tiny_package.directory)]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["image"]).name for r in records] == ["scan.npz", "broken.npz"]
    scan, bad = records
    assert (scan["width"], scan["height"]) == (1024, 400)
    assert "error" in bad and "broken.npz" in bad["error"]
    boxes = np.array([d["box_xyxy"] for d in scan["detections"]])
    assert boxes.size > 0  # the dark block is found, in raw-scan pixels
    union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
    assert np.all(np.abs(union - np.array(box)) < 40)
