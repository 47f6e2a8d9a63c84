"""A few images, one epoch, small size: train -> export -> load in the detection engine -> detect -> eval."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("ultralytics", reason="needs the train extra")

from smartscreen.cli import main
from smartscreen.detection.engine import OnnxDetector
from smartscreen.detection.package import load_model_package
from smartscreen.domain.taxonomy import CLASS_NAMES
from tests.training.fixtures import make_yolo_dataset

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("YOLO_CONFIG_DIR", os.environ.get("YOLO_CONFIG_DIR", str(root / ".ultralytics")))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "False")


def test_train_export_detect_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_yolo_dataset(tmp_path / "data", n_train=8, n_val=4, n_clean=1)
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--imgsz",
            "64",
            "--epochs",
            "1",
            "--batch",
            "4",
            "--close-mosaic",
            "0",
            "--project",
            str(tmp_path / "runs"),
            "--name",
            "tiny",
            "--seed",
            "3",
            "--optimizer",
            "SGD",
            "--lr0",
            "0.02",
        ]
    )
    assert rc == 0
    run = tmp_path / "runs" / "tiny"
    args_used = yaml.safe_load((run / "args.yaml").read_text())
    assert args_used["optimizer"] == "SGD" and args_used["lr0"] == 0.02
    record = json.loads((run / "smartscreen-train.json").read_text())
    assert record["settings"]["hsv_h"] == 0.0 and record["settings"]["seed"] == 3
    assert len(record["data_sha256"]) == 64 and record["data_images"] == 8
    assert "XrayPhotometric" in record["train_transforms"]  # the X-ray augmentation is in the pipeline
    assert record["train_transforms"][-1] == "Format"
    progress = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert progress[0]["epoch"] == 1.0 and "metrics/mAP50(B)" in progress[0]

    models = tmp_path / "models"
    export_args = ["export", str(run), "--name", "tiny-model", "--models", str(models), "--with-weights", "--tta", "hv"]
    assert main(export_args) == 0
    # the weights travel with the package, so training can continue from it
    assert (tmp_path / "models" / "tiny-model" / "weights.pt").read_bytes() == (
        run / "weights" / "best.pt"
    ).read_bytes()
    package = load_model_package(tmp_path / "models" / "tiny-model")  # full validation incl. the ONNX signature
    m = package.manifest
    assert m.class_names == CLASS_NAMES
    assert m.input.dynamic_batch and m.input.dynamic_hw and m.input.size_hw == (64, 64)
    assert m.architecture == "yolo11n"  # from the checkpoint, not the file name it was trained from
    assert m.tta.mode == "hv"  # the line and eval run the four mirrored views this package asks for
    assert (
        m.training is not None and m.training.data_sha256 == record["data_sha256"] and m.training.base_weights is None
    )

    detector = OnnxDetector.from_package(package.directory, conf_threshold=0.0001)
    images = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((tmp_path / "data" / "images" / "val").glob("*.png"))
    ]
    images.append(np.full((300, 500, 3), 250, np.uint8))  # another size in the same batch (dynamic axes)
    results = detector.detect_images(images)
    assert len(results) == len(images)
    assert results[0].model_id == "tiny-model@1.0.0"
    found = [d for d in results if len(d)]
    assert found, "one epoch from scratch still yields low-score boxes; none at all means the decode is broken"
    for det, image in zip(results, images, strict=True):
        if len(det):
            h, w = image.shape[:2]
            assert float(det.xyxy[:, 0].min()) >= -1 and float(det.xyxy[:, 2].max()) <= w + 1
            assert float(det.xyxy[:, 1].min()) >= -1 and float(det.xyxy[:, 3].max()) <= h + 1

    capsys.readouterr()
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(package.directory),
                "--data",
                str(data),
                "--split",
                "val",
                "--out",
                str(out),
                "--record",
            ]
        )
        == 0
    )
    report = json.loads((out / "eval.json").read_text())
    assert report["n_images"] == 4 and report["n_clean"] == 1 and report["tta"] == "hv"
    assert 0.0 <= report["map50"] <= 1.0
    assert report["operating_point"]["clean_images"] == 1
    assert (out / "pr_curve.png").stat().st_size > 1000
    recorded = load_model_package(package.directory).manifest.metrics
    assert recorded is not None and recorded.extra["images"] == 4.0

    # the promotion check against itself: both packages run on the same images, every change and interval is 0
    capsys.readouterr()
    args = ["eval", "--model", str(package.directory), "--data", str(data), "--split", "val", "--out", str(out)]
    with pytest.raises(
        SystemExit, match="--record"
    ):  # metrics recorded in model.yaml are the line's, not an override's
        main([*args, "--tta", "none", "--record"])
    assert main([*args, "--baseline", str(package.directory), "--bootstrap", "50"]) == 0
    promotion = json.loads((out / "promotion.json").read_text())
    assert promotion["passed"] and promotion["bootstrap"]
    assert all(row["delta"] == 0.0 and row["delta_high"] == 0.0 for row in promotion["classes"])
    assert "promotion check" in capsys.readouterr().out
