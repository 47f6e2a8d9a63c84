from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartscreen.detection.engine import OnnxDetector, plan_batches, resolve_providers
from smartscreen.detection.package import InputSpec, ModelPackage
from smartscreen.detection.preprocess import plan_letterbox
from smartscreen.domain.ports import Detector
from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.errors import InferenceError


def parcel_image(h: int, w: int, blocks: Sequence[tuple[int, int, int, int, tuple[int, int, int]]]) -> np.ndarray:
    """White air, a light parcel body and solid coloured blocks (x0, y0, x1, y1, rgb)."""
    image = np.full((h, w, 3), 255, np.uint8)
    xs = [b[0] for b in blocks] + [b[2] for b in blocks]
    ys = [b[1] for b in blocks] + [b[3] for b in blocks]
    image[max(0, min(ys) - 40) : min(h, max(ys) + 40), max(0, min(xs) - 40) : min(w, max(xs) + 40)] = (225, 215, 190)
    for x0, y0, x1, y1, rgb in blocks:
        image[y0:y1, x0:x1] = rgb
    return image


def rendered(rgb: np.ndarray) -> RenderedScan:
    h, w = rgb.shape[:2]
    air = (rgb >= 235).all(axis=2)
    material = np.where(air, MaterialClass.BACKGROUND, MaterialClass.ORGANIC).astype(np.uint8)
    zeros = np.zeros((h, w), np.float32)
    return RenderedScan(rgb=rgb, attenuation_high=zeros, attenuation_low=zeros, zeff=zeros, material=material)


def union_box(xyxy: np.ndarray) -> np.ndarray:
    return np.array([xyxy[:, 0].min(), xyxy[:, 1].min(), xyxy[:, 2].max(), xyxy[:, 3].max()])


def test_implements_the_detector_port(tiny_detector: OnnxDetector) -> None:
    assert isinstance(tiny_detector, Detector)
    assert tiny_detector.model_id == "tiny-cells@0.1.0"
    assert tiny_detector.warmup_ms is not None


def test_boxes_come_back_in_source_pixels(tiny_detector: OnnxDetector) -> None:
    block = (300, 150, 620, 470)
    image = parcel_image(800, 1024, [(*block, (0, 255, 255)), (700, 500, 900, 700, (255, 0, 255))])
    det = tiny_detector.detect_images([image])[0]
    lb = tiny_detector.plan(image)
    assert lb.input_hw[0] % 32 == 0 and lb.input_hw != (640, 640)  # rectangular input
    cell_src = 32 / lb.scale
    by_class = {name: det.xyxy[det.class_ids == k] for k, name in enumerate(det.class_names)}
    red_dark = union_box(by_class["baton"])  # class 0: dark in the red channel
    green_dark = union_box(by_class["pliers"])  # class 1: dark in green
    assert set(det.labels()) == {"baton", "pliers"}
    # cells wholly inside a block score 1 and lie inside it; together the cells cover it up to one cell at each edge
    full = union_box(det.xyxy[(det.class_ids == 0) & (det.scores > 0.999)])
    np.testing.assert_array_less(np.array(block[:2]) - 1, full[:2])
    np.testing.assert_array_less(full[2:], np.array(block[2:]) + 1)
    np.testing.assert_array_less(np.abs(red_dark - np.array(block)), cell_src + 1)
    np.testing.assert_array_less(np.abs(green_dark - np.array([700, 500, 900, 700])), cell_src + 1)
    assert det.scores.min() > 0.25


@pytest.mark.parametrize("policy", ["pad", "group"])
def test_batch_results_equal_single_image_results(tiny_package: ModelPackage, policy: str) -> None:
    detector = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, max_batch=8, shape_policy=policy)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    images = []
    for h, w in [(900, 1024), (400, 1024), (1500, 700), (640, 640), (200, 300)]:
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        colour = tuple(int(c) for c in rng.choice([0, 255], size=3))
        images.append(parcel_image(h, w, [(x0, y0, x0 + w // 3, y0 + h // 3, colour)]))
    images.append(images[0].copy())  # two of the same size share a batch under either policy
    batched = detector.detect_images(images)
    assert detector.last_times is not None
    if policy == "pad":  # one call, padded to the largest input
        assert detector.last_times.batch_size == len(images)
    for image, together in zip(images, batched, strict=True):
        alone = detector.detect_images([image])[0]
        assert len(alone) == len(together)
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5)
        np.testing.assert_array_equal(together.class_ids, alone.class_ids)


def test_plan_batches_groups_equal_shapes_or_pads() -> None:
    spec = InputSpec()
    sizes = [(800, 1200), (300, 1000), (800, 1200), (1200, 800), (800, 1200)]
    layouts = [plan_letterbox(hw, (0, 0, hw[1], hw[0]), spec) for hw in sizes]
    assert plan_batches(layouts, 2, "group") == [[0, 2], [4], [1], [3]]
    assert plan_batches(layouts, 2, "pad") == [[0, 1], [2, 3], [4]]
    assert sorted(i for g in plan_batches(layouts, 8, "group") for i in g) == list(range(5))


def test_more_images_than_max_batch_are_split(tiny_package: ModelPackage) -> None:
    detector = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, max_batch=2)
    images = [parcel_image(300, 500, [(100, 100, 200, 200, (0, 0, 0))]) for _ in range(5)]
    results = detector.detect_images(images)
    assert len(results) == 5 and all(len(r) > 0 for r in results)
    assert detector.last_times is not None and detector.last_times.batch_size == 1


def test_detect_on_rendered_scans_crops_by_material(tiny_detector: OnnxDetector) -> None:
    rgb = parcel_image(1200, 1024, [(500, 800, 600, 900, (0, 255, 255))])
    det = tiny_detector.detect([rendered(rgb)])[0]
    assert len(det) > 0 and set(det.labels()) == {"baton"}
    box = union_box(det.xyxy)
    assert box[0] >= 490 and box[2] <= 610 and box[1] >= 790 and box[3] <= 910


def test_conf_threshold_override(tiny_package: ModelPackage) -> None:
    image = parcel_image(400, 400, [(100, 100, 300, 300, (51, 255, 255))])  # red 51: score 1 - 2.5 * 0.2 = 0.5
    low = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, conf_threshold=0.25)
    high = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, conf_threshold=0.7)
    assert len(low.detect_images([image])[0]) > 0
    assert len(high.detect_images([image])[0]) == 0


def test_bad_image_arrays_are_rejected(tiny_detector: OnnxDetector) -> None:
    with pytest.raises(ValueError, match=r"image 0 must be an \(h, w, 3\) uint8"):
        tiny_detector.detect_images([np.zeros((10, 10), np.uint8)])
    assert tiny_detector.detect_images([]) == []


def test_unavailable_provider_messages() -> None:
    with pytest.raises(InferenceError, match=r"cuda not available.*onnxruntime-gpu"):
        resolve_providers(["cuda"], ["CPUExecutionProvider"])
    with pytest.raises(InferenceError, match="unknown execution provider 'tpu'"):
        resolve_providers(["tpu"], ["CPUExecutionProvider"])
    assert resolve_providers(["cuda", "cpu"], ["CUDAExecutionProvider", "CPUExecutionProvider"], device_id=1) == [
        ("CUDAExecutionProvider", {"device_id": "1"}),
        "CPUExecutionProvider",
    ]


def test_cuda_request_on_a_cpu_build_falls_back_with_a_warning(
    tiny_package: ModelPackage, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; the fallback path cannot be shown here")
    with caplog.at_level(logging.WARNING):
        det = OnnxDetector.from_package(tiny_package.directory, providers=("cuda", "cpu"), intra_op_threads=1)
    assert det.providers_in_use == ("CPUExecutionProvider",)
    assert "cuda not available" in caplog.text
    with pytest.raises(InferenceError, match="cuda not available"):
        OnnxDetector.from_package(tiny_package.directory, providers=("cuda",))


class _BrokenSession:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.fail = False

    def get_inputs(self) -> Sequence[Any]:
        return self.real.get_inputs()  # type: ignore[no-any-return]

    def get_outputs(self) -> Sequence[Any]:
        return self.real.get_outputs()  # type: ignore[no-any-return]

    def run(self, names: Sequence[str] | None, feed: Mapping[str, Any]) -> Sequence[Any]:
        if self.fail:
            raise RuntimeError("device lost")
        return self.real.run(names, feed)  # type: ignore[no-any-return]


def test_a_failing_session_raises_inference_error(tiny_package: ModelPackage, tiny_detector: OnnxDetector) -> None:
    session = _BrokenSession(tiny_detector._session)
    det = OnnxDetector(session, tiny_package)
    session.fail = True
    with pytest.raises(InferenceError, match="device lost"):
        det.detect_images([parcel_image(100, 100, [(10, 10, 50, 50, (0, 0, 0))])])


SHIPPED = Path(__file__).resolve().parents[2] / "models" / "smartscreen-yolo11n"


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model.yaml").is_file(), reason="the shipped model package is not in the tree yet")
def test_shipped_model_loads_detects_and_batches_consistently() -> None:
    detector = OnnxDetector.from_package(SHIPPED, intra_op_threads=2, max_batch=4)
    rng = np.random.default_rng(0)
    images = [
        parcel_image(int(h), 1024, [(300, 200, 500, 400, (40, 60, 200)), (600, 300, 700, 600, (230, 140, 40))])
        for h in rng.integers(500, 1400, size=3)
    ]
    batched = detector.detect_images(images)
    for image, together in zip(images, batched, strict=True):
        alone = detector.detect_images([image])[0]
        assert np.all(together.xyxy[:, 2] <= image.shape[1]) and np.all(together.xyxy[:, 3] <= image.shape[0])
        # a real CNN sees a little more padding in a mixed-size batch: same objects, near-equal boxes/scores
        strong = alone.scores > 0.5
        for box, score, cls in zip(alone.xyxy[strong], alone.scores[strong], alone.class_ids[strong], strict=True):
            same = together.class_ids == cls
            assert same.any()
            ious = np.array([_iou(box, b) for b in together.xyxy[same]])
            assert ious.max() > 0.9
            assert abs(together.scores[same][ious.argmax()] - score) < 0.05


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model.yaml").is_file(), reason="the shipped model package is not in the tree yet")
def test_shipped_model_sees_line_scans_framed_like_its_training_images() -> None:
    """Line path (full-width rendered scan, cropped by the engine) == training framing (the imaging crop).

    Simulator raw scan -> imaging chain -> ``detect([scan])`` must give the same boxes, in scan
    pixels, as ``detect_images`` on the crop the synthetic training PNGs are made of. Accuracy is
    the evaluation's business (smartscreen eval); this checks that the engine feeds the model the
    framing it was trained on and maps boxes back correctly.
    """
    imaging = pytest.importorskip("smartscreen.imaging")
    detector = OnnxDetector.from_package(SHIPPED, intra_op_threads=2, conf_threshold=0.05)
    params = imaging.ScannerParams()
    simulator = imaging.ParcelSimulator(params, np.random.default_rng(2024))
    chain = imaging.ImagingChain(params, simulator.calibration())
    for _ in range(3):
        parcel = simulator.simulate(1.0, threat_classes=("gun", "knife", "hammer"), concealment_probability=0.0)
        scan = chain.process(parcel.high, parcel.low)
        box = imaging.content_box(scan.material)
        assert box is not None
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(scan.rgb[y0:y1, x0:x1])
        on_line = detector.detect([scan])[0]
        on_crop = detector.detect_images([crop])[0]
        plan = detector.plan(crop).crop_xyxy
        assert (plan[2] - plan[0]) * (plan[3] - plan[1]) >= 0.95 * crop.shape[0] * crop.shape[1]
        assert on_line.xyxy.size == 0 or (on_line.xyxy[:, 2].max() <= scan.shape_hw[1])
        shifted = on_crop.xyxy + np.array([x0, y0, x0, y0], np.float32)
        for b, cls in zip(on_line.xyxy[on_line.scores > 0.1], on_line.class_ids[on_line.scores > 0.1], strict=True):
            same = on_crop.class_ids == cls
            assert same.any(), "a detection on the line scan is missing on the training-style crop"
            assert max(_iou(b, c) for c in shifted[same]) > 0.8


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def test_from_config_uses_the_detector_section(tiny_package: ModelPackage, tmp_path: Path) -> None:
    from smartscreen.config import DetectorConfig

    config = DetectorConfig(package=tiny_package.directory, intra_op_threads=1, max_batch=3, conf_threshold=0.6)
    detector = OnnxDetector.from_config(config)
    assert detector.max_batch == 3 and detector.nms.conf == 0.6


def test_stacked_channel_models_take_rendered_scans(tmp_path: Path) -> None:
    from tests.detection.tiny_model import build_tiny_package

    package = build_tiny_package(tmp_path / "stacked", input_image="stacked_channels")
    assert package.manifest.input.image == "stacked_channels"
    detector = OnnxDetector.from_package(package.directory, intra_op_threads=1)
    rgb = np.full((300, 400, 3), 255, np.uint8)
    rgb[100:200, 100:200] = 0
    h, w = rgb.shape[:2]
    att = np.zeros((h, w), np.float32)
    zeff = np.zeros((h, w), np.float32)
    att[100:200, 100:200] = 0.5  # weak attenuation -> dark in the high-energy channel (class 0), mean 21/255
    zeff[100:200, 100:200] = 26.0  # iron-like -> bright in the Z channel: class 2 scores 0
    material = np.where(att > 0, MaterialClass.METAL, MaterialClass.BACKGROUND).astype(np.uint8)
    scan = RenderedScan(rgb=rgb, attenuation_high=att, attenuation_low=att * 2, zeff=zeff, material=material)
    det = detector.detect([scan])[0]
    assert len(det) > 0 and set(det.labels()) <= {"baton", "pliers"}
    assert "baton" in det.labels()
    with pytest.raises(InferenceError, match="stacked dual-energy channels"):
        detector.detect_images([rgb])


@pytest.mark.parametrize(("mode", "n_views"), [("hv", 4), ("d4", 8)])
def test_views_of_an_equivariant_model_fuse_to_the_plain_result(
    tiny_package: ModelPackage, mode: str, n_views: int
) -> None:
    """The analytic cell model is exactly mirror- and transpose-equivariant: fused views give the plain result."""
    plain = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, tta="none")
    four = OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, tta=mode)  # type: ignore[arg-type]
    image = parcel_image(700, 1000, [(120, 90, 400, 300, (0, 255, 255)), (610, 380, 820, 650, (255, 0, 255))])
    a, b = plain.detect_images([image])[0], four.detect_images([image])[0]
    assert four.last_times is not None and four.last_times.views == n_views
    assert plain.last_times is not None and plain.last_times.views == 1
    assert len(a) > 4 and len(a) == len(b)
    ka, kb = np.round(a.xyxy, 1), np.round(b.xyxy, 1)  # sort keys robust to float rounding of equal boxes
    order_a = np.lexsort((ka[:, 1], ka[:, 0], a.class_ids))
    order_b = np.lexsort((kb[:, 1], kb[:, 0], b.class_ids))
    np.testing.assert_array_equal(a.class_ids[order_a], b.class_ids[order_b])
    np.testing.assert_allclose(a.xyxy[order_a], b.xyxy[order_b], atol=1e-3)
    np.testing.assert_allclose(a.scores[order_a], b.scores[order_b], atol=1e-5)


class _FixedBoxSession(_BrokenSession):
    """Reports one class-0 box at the same input-tensor place whatever the image: not mirror-equivariant."""

    def __init__(self, real: Any, n_classes: int) -> None:
        super().__init__(real)
        self.n_classes = n_classes

    def run(self, names: Sequence[str] | None, feed: Mapping[str, Any]) -> Sequence[Any]:
        n = next(iter(feed.values())).shape[0]
        out = np.zeros((n, 4 + self.n_classes, 8), np.float32)
        out[:, :4, 0] = (48, 40, 32, 16)  # cx, cy, w, h in input pixels
        out[:, 4, 0] = 0.9
        return [out]


def test_a_box_only_one_orientation_produces_keeps_a_share_of_its_score(tiny_package: ModelPackage) -> None:
    session = _FixedBoxSession(
        OnnxDetector.from_package(tiny_package.directory)._session, len(tiny_package.class_names)
    )
    image = parcel_image(256, 256, [(60, 60, 200, 200, (0, 0, 0))])
    one = OnnxDetector(session, tiny_package, conf_threshold=0.1, tta="none").detect_images([image])[0]
    two = OnnxDetector(session, tiny_package, conf_threshold=0.1, tta="h").detect_images([image])[0]
    four = OnnxDetector(session, tiny_package, conf_threshold=0.1, tta="hv").detect_images([image])[0]
    assert one.scores.tolist() == pytest.approx([0.9])
    assert two.scores.tolist() == pytest.approx([0.45, 0.45])
    assert four.scores.tolist() == pytest.approx([0.225] * 4)
    # the mirrored views' boxes land mirrored about the image centre line(s)
    xs = sorted(float(x) for x in two.xyxy[:, 0] + two.xyxy[:, 2])
    assert xs[0] + xs[1] == pytest.approx(2 * image.shape[1], abs=2)
    assert len(OnnxDetector(session, tiny_package, conf_threshold=0.3, tta="hv").detect_images([image])[0]) == 0


def test_the_package_sets_tta_and_the_line_config_can_override_it(package_copy: Path) -> None:
    from smartscreen.config import DetectorConfig
    from smartscreen.detection.package import TtaSpec, load_model_package, update_model_package

    update_model_package(package_copy, tta=TtaSpec(mode="hv", fusion_iou=0.6))
    assert load_model_package(package_copy).manifest.tta == TtaSpec(mode="hv", fusion_iou=0.6)
    assert OnnxDetector.from_package(package_copy, intra_op_threads=1).tta.mode == "hv"
    off = OnnxDetector.from_config(DetectorConfig(package=package_copy, intra_op_threads=1, tta="none"))
    assert off.tta.mode == "none" and off.tta.fusion_iou == 0.6
    assert off.model_id == "tiny-cells@0.1.0+tta.none"  # the audit trail says it ran otherwise than measured
    as_packaged = OnnxDetector.from_config(DetectorConfig(package=package_copy, intra_op_threads=1))
    assert as_packaged.tta.mode == "hv" and as_packaged.model_id == "tiny-cells@0.1.0"


def test_transposed_views_are_refused_for_a_fixed_oblong_input(tmp_path: Path) -> None:
    from smartscreen.errors import ModelPackageError
    from tests.detection.tiny_model import build_tiny_package

    package = build_tiny_package(tmp_path / "oblong", size_hw=(320, 640), dynamic=False)
    with pytest.raises(ModelPackageError, match="tta d4"):
        OnnxDetector.from_package(package.directory, intra_op_threads=1, tta="d4")
    assert OnnxDetector.from_package(package.directory, intra_op_threads=1, tta="hv").tta.mode == "hv"
