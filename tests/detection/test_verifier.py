"""The second-look verifier: crop geometry, score fusion, package attachment and the engine's use of it.

The verifier here is analytic (built with ``onnx.helper``): it averages each crop and calls a crop whose red
channel is dark class 0, anything else background, so every expected score can be computed by hand.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from smartscreen.detection.engine import OnnxDetector
from smartscreen.detection.package import VerifierSpec, load_model_package
from smartscreen.detection.verifier import (
    MIN_CROP_SIDE_PX,
    Verifier,
    attach_verifier,
    crop_square,
    fuse_scores,
)
from smartscreen.domain.detections import Detections
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import ModelPackageError

N_OUT = len(CLASS_NAMES) + 1
DARK_LOGIT = 10.0  # class 0's logit for a crop whose red channel is black
BACKGROUND_LOGIT = 5.0


def build_analytic_verifier(path: Path, n_outputs: int = N_OUT) -> Path:
    """logits = [10 * (1 - mean red), -10, ..., -10, 5]: dark-red crops are class 0, white ones background."""
    weight = np.zeros((3, n_outputs), np.float32)
    weight[0, 0] = -DARK_LOGIT
    bias = np.full((n_outputs,), -10.0, np.float32)
    bias[0] = DARK_LOGIT
    bias[-1] = BACKGROUND_LOGIT
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["crops"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        ],
        "analytic_verifier",
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_outputs])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def p_class0(mean_red: float) -> float:
    logit0 = DARK_LOGIT * (1.0 - mean_red)
    others = (N_OUT - 2) * math.exp(-10.0)
    return math.exp(logit0) / (math.exp(logit0) + math.exp(BACKGROUND_LOGIT) + others)


def p_background(mean_red: float) -> float:
    logit0 = DARK_LOGIT * (1.0 - mean_red)
    others = (N_OUT - 2) * math.exp(-10.0)
    return math.exp(BACKGROUND_LOGIT) / (math.exp(logit0) + math.exp(BACKGROUND_LOGIT) + others)


def spec(**overrides: float | int | str) -> VerifierSpec:
    values: dict[str, float | int | str] = {"crop_px": 32, "context": 1.0, "min_score": 0.05, "max_candidates": 8}
    values.update(overrides)
    return VerifierSpec(sha256="0" * 64, **values)


@pytest.fixture
def verified_package(package_copy: Path, tmp_path: Path) -> Path:
    attach_verifier(package_copy, build_analytic_verifier(tmp_path / "v.onnx"), spec(), version="1.0.0+v")
    return package_copy


def white_with_black_square(h: int = 128, w: int = 192, x0: int = 64, y0: int = 32, side: int = 32) -> np.ndarray:
    image = np.full((h, w, 3), 255, np.uint8)
    image[y0 : y0 + side, x0 : x0 + side] = 0
    return image


def test_crop_square_centres_on_the_box_and_pads_with_white() -> None:
    image = white_with_black_square()
    inside = crop_square(image, np.array([[64, 32, 96, 64]], np.float32), 16, 1.0)
    assert inside.shape == (1, 16, 16, 3)
    assert int(inside.max()) == 0  # the square exactly fills the crop
    wider = crop_square(image, np.array([[64, 32, 96, 64]], np.float32), 16, 2.0)
    assert int(wider[0, 8, 8, 0]) == 0 and int(wider[0, 0, 0, 0]) == 255  # centre black, context white
    # a box at the image corner: the part of the square outside the image is white padding
    corner = crop_square(image, np.array([[0, 0, 20, 10]], np.float32), 20, 1.0)
    assert corner.shape == (1, 20, 20, 3) and int(corner.min()) == 255
    # a tiny box still gets a crop of at least MIN_CROP_SIDE_PX source pixels around it
    tiny = crop_square(image, np.array([[79, 47, 81, 49]], np.float32), MIN_CROP_SIDE_PX, 1.0)
    assert int(tiny.max()) == 0  # 16 source px around the centre of the 32 px black square


def test_fuse_scores_is_a_weighted_geometric_mean() -> None:
    d = np.array([0.5, 0.5, 0.04], np.float32)
    v = np.array([1.0, 0.02, 1.0], np.float32)
    assert fuse_scores(d, v, 0.5) == pytest.approx([math.sqrt(0.5), 0.1, 0.2], rel=1e-5)
    assert fuse_scores(d, v, 0.0) == pytest.approx(d)
    assert fuse_scores(d, v, 1.0) == pytest.approx(v)


def test_rescore_keeps_what_the_verifier_sees_and_lowers_what_it_does_not(tmp_path: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(build_analytic_verifier(tmp_path / "v.onnx")))
    verifier = Verifier(session, spec(), CLASS_NAMES)
    image = white_with_black_square()
    found = Detections(
        xyxy=np.array([[150, 80, 182, 112], [64, 32, 96, 64], [0, 0, 32, 32], [10, 90, 40, 120]], np.float32),
        scores=np.array([0.6, 0.5, 0.4, 0.01], np.float32),  # the last is under min_score
        class_ids=np.array([0, 0, 3, 0], np.int32),
        class_names=CLASS_NAMES,
        model_id="m@1",
    )
    out = verifier.rescore(image, found)
    assert len(out) == 3  # the one under min_score dropped
    # the black square (verifier: class 0 with p ~ 0.99) is now first; the white box called class 0 fell
    np.testing.assert_array_equal(out.xyxy[0], [64, 32, 96, 64])
    assert float(out.scores[0]) == pytest.approx(math.sqrt(0.5 * p_class0(0.0)), rel=1e-4)
    white_class0 = float(out.scores[np.flatnonzero(out.xyxy[:, 0] == 150)[0]])
    assert white_class0 == pytest.approx(math.sqrt(0.6 * p_class0(1.0)), rel=1e-3)
    assert white_class0 < 0.1
    # class 3 on white: the verifier gives it almost nothing
    assert float(out.scores[out.class_ids == 3][0]) < 1e-3
    assert list(out.scores) == sorted(out.scores, reverse=True)
    # evidence "object": the verifier vouches for an object of any class, the class stays the detector's
    on_square = Detections(
        xyxy=np.array([[64, 32, 96, 64], [150, 80, 182, 112]], np.float32),
        scores=np.array([0.5, 0.5], np.float32),
        class_ids=np.array([3, 3], np.int32),
        class_names=CLASS_NAMES,
        model_id="m@1",
    )
    by_class = verifier.rescore(image, on_square)
    by_object = Verifier(session, spec(evidence="object"), CLASS_NAMES).rescore(image, on_square)
    assert float(by_class.scores.max()) < 1e-3  # class 3 is not what the verifier sees
    np.testing.assert_array_equal(by_object.xyxy[0], [64, 32, 96, 64])
    assert float(by_object.scores[0]) == pytest.approx(math.sqrt(0.5 * (1.0 - p_background(0.0))), rel=1e-4)
    assert float(by_object.scores[1]) == pytest.approx(math.sqrt(0.5 * (1.0 - p_background(1.0))), rel=1e-3)
    capped = Verifier(session, spec(max_candidates=1), CLASS_NAMES).rescore(image, found)
    assert len(capped) == 1 and float(capped.xyxy[0, 0]) == 150.0  # only the top-scoring box was looked at


def test_attached_verifier_runs_in_the_engine(verified_package: Path) -> None:
    package = load_model_package(verified_package)
    assert package.manifest.verifier is not None and package.manifest.metrics is None
    assert package.manifest.version == "1.0.0+v"
    with_verifier = OnnxDetector.from_package(verified_package, intra_op_threads=1, conf_threshold=0.05)
    without = OnnxDetector.from_package(verified_package, intra_op_threads=1, conf_threshold=0.05, verifier=False)
    assert with_verifier.verifier is not None and without.verifier is None
    assert with_verifier.model_id == "tiny-cells@1.0.0+v"
    assert without.model_id == "tiny-cells@1.0.0+v+verifier.off"
    # the tiny detector scores a cell black in channel c as class c: a black square is class 0, a magenta one
    # (black in green only) class 1; the analytic verifier knows class 0 only (a dark red channel)
    image = white_with_black_square(h=128, w=192, x0=32, y0=32, side=32)
    image[64:96, 128:160] = (255, 0, 255)
    plain = without.detect_images([image])[0]
    verified = with_verifier.detect_images([image])[0]
    assert {int(c) for c in plain.class_ids} == {0, 1}
    assert {int(c) for c in verified.class_ids} == {0}  # the class-1 box fell under the floor
    best_plain = float(plain.scores[plain.class_ids == 0].max())
    assert float(verified.scores.max()) == pytest.approx(math.sqrt(best_plain * p_class0(0.0)), rel=0.05)
    assert with_verifier.last_times is not None and with_verifier.last_times.verify_ms > 0


def test_the_recorded_threshold_needs_the_verifier_on(verified_package: Path) -> None:
    from smartscreen.detection.package import Metrics, update_model_package

    update_model_package(verified_package, metrics=Metrics(dataset="synthetic", extra={"operating_threshold": 0.2}))
    manifest = load_model_package(verified_package).manifest
    assert manifest.operating_threshold() == 0.2
    assert manifest.operating_threshold(verifier="off") is None


def test_a_replaced_or_missing_verifier_file_is_refused(verified_package: Path, tmp_path: Path) -> None:
    target = verified_package / "verifier.onnx"
    build_analytic_verifier(target, n_outputs=N_OUT)  # same graph: same bytes, still loads
    OnnxDetector.from_package(verified_package, intra_op_threads=1)
    shutil.copyfile(build_analytic_verifier(tmp_path / "other.onnx", n_outputs=5), target)
    with pytest.raises(ModelPackageError, match="sha256"):
        OnnxDetector.from_package(verified_package, intra_op_threads=1)
    with pytest.raises(ModelPackageError, match="sha256"):
        load_model_package(verified_package)  # what validate-config runs
    load_model_package(verified_package, check_onnx=False)  # the cheap load does not read it
    target.unlink()
    with pytest.raises(ModelPackageError, match="not in the package"):
        OnnxDetector.from_package(verified_package, intra_op_threads=1)
    # the detector alone still loads when the verifier is turned off
    assert OnnxDetector.from_package(verified_package, intra_op_threads=1, verifier=False).verifier is None


def test_a_verifier_with_the_wrong_number_of_outputs_is_refused(package_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="classes plus background"):
        attach_verifier(package_copy, build_analytic_verifier(tmp_path / "v.onnx", n_outputs=5), spec())
