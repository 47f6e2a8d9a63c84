"""Training the second-look verifier: candidate labelling, box jitter, and mine -> train -> export -> attach -> eval
through ``smartscreen verifier`` on a drawn dataset and the analytic tiny detector."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the train extra")

from smartscreen.cli import main
from smartscreen.detection.engine import OnnxDetector
from smartscreen.detection.package import load_model_package
from smartscreen.detection.verifier import Verifier
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.training.metrics import ImageBoxes
from smartscreen.training.verifier import CropSet, centre_crops, jitter_boxes, label_candidates
from tests.detection.tiny_model import build_tiny_package
from tests.training.fixtures import make_yolo_dataset

pytestmark = [pytest.mark.train]

N = len(CLASS_NAMES)


def test_candidates_are_labelled_by_overlap() -> None:
    truth = ImageBoxes.truth(
        np.array([[0, 0, 100, 100], [200, 200, 240, 240]], np.float32), np.array([6, 10], np.int32)
    )
    candidates = np.array(
        [
            [0, 0, 100, 90],  # IoU 0.9 with the gun
            [0, 0, 100, 40],  # IoU 0.4: ambiguous, left out
            [300, 300, 350, 350],  # nothing: background
            [200, 200, 240, 240],  # the knife exactly
        ],
        np.float32,
    )
    np.testing.assert_array_equal(label_candidates(candidates, truth, N), [6, -1, N, 10])
    no_truth = ImageBoxes.truth(np.zeros((0, 4), np.float32), np.zeros(0, np.int32))
    np.testing.assert_array_equal(label_candidates(candidates, no_truth, N), [N] * 4)


def test_jittered_boxes_stay_near_their_box() -> None:
    box = np.array([[100, 100, 200, 150]], np.float32)
    jittered = jitter_boxes(box, 50, np.random.default_rng(0))
    assert jittered.shape == (50, 4)
    centres = (jittered[:, :2] + jittered[:, 2:]) / 2
    assert np.all(np.abs(centres[:, 0] - 150) <= 10.01) and np.all(np.abs(centres[:, 1] - 125) <= 5.01)
    widths = jittered[:, 2] - jittered[:, 0]
    assert np.all((widths >= 85 - 1e-3) & (widths <= 115 + 1e-3)) and widths.std() > 1  # varied, within 15 %


def test_verifier_cli_mines_trains_attaches_and_evaluates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_yolo_dataset(tmp_path / "data", n_train=24, n_val=8, n_clean=3)
    source = build_tiny_package(tmp_path / "tiny")
    out = tmp_path / "verified"
    run_dir = tmp_path / "run"
    args = ["verifier", "--model", str(source.directory), "--data", str(data), "--out", str(out), "--run", str(run_dir)]
    rc = main(
        [
            *args,
            "--epochs",
            "6",
            "--crop-px",
            "32",
            "--width",
            "8",
            "--batch",
            "16",
            "--version",
            "1.0.0+v",
            "--threads",
            "1",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    package = load_model_package(out)
    spec = package.manifest.verifier
    assert spec is not None and spec.crop_px == 32 and package.manifest.version == "1.0.0+v"
    assert spec.training is not None and "crops" in spec.training.notes
    assert load_model_package(source.directory).manifest.verifier is None  # the source package is untouched
    epochs = [json.loads(line) for line in (run_dir / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    # the mined validation crops: the trained verifier ranks the objects' own class above background
    val = CropSet.load(run_dir / "crops-val.npz")
    assert set(np.unique(val.labels)) >= {N, CLASS_NAMES.index("gun")}
    verifier = Verifier.from_package(package, intra_op_threads=1)
    assert verifier is not None
    probabilities = verifier.classify(centre_crops(val.images, spec.crop_px))
    objects = val.labels < N
    p_own = probabilities[np.flatnonzero(objects), val.labels[objects]]
    p_background_own = probabilities[np.flatnonzero(~objects), N]
    assert float(np.mean(p_own)) > 0.3 and float(np.mean(p_background_own)) > 0.3
    # the engine and the evaluation run it; a second run re-uses the mined crops
    detector = OnnxDetector.from_package(out, intra_op_threads=1)
    assert detector.verifier is not None
    eval_dir = tmp_path / "eval"
    assert main(["eval", "--model", str(out), "--data", str(data), "--split", "val", "--out", str(eval_dir)]) == 0
    assert json.loads((eval_dir / "eval.json").read_text())["model_id"] == "tiny-cells@1.0.0+v"
    shutil.rmtree(out)
    assert main([*args, "--epochs", "1", "--crop-px", "32", "--width", "8", "--threads", "1"]) == 0
    assert "crops of the train split from" in capsys.readouterr().err
