from __future__ import annotations

import numpy as np
import pytest

from smartscreen.detection.package import CropSpec, InputSpec, Normalisation
from smartscreen.detection.postprocess import (
    NmsParams,
    RawDetections,
    box_iou,
    decode_yolo_v8,
    from_view,
    fuse_views,
    nms,
)
from smartscreen.detection.preprocess import BatchBuffer, content_box, plan_letterbox


@pytest.mark.parametrize(
    ("hw", "expected_input_hw"),
    [((800, 1200), (448, 640)), ((1200, 800), (640, 448)), ((640, 640), (640, 640)), ((100, 1000), (64, 640))],
)
def test_rectangular_letterbox_pads_only_to_the_stride(hw: tuple[int, int], expected_input_hw: tuple[int, int]) -> None:
    lb = plan_letterbox(hw, (0, 0, hw[1], hw[0]), InputSpec())
    assert lb.input_hw == expected_input_hw
    assert lb.input_hw[0] % 32 == 0 and lb.input_hw[1] % 32 == 0
    assert abs(lb.resized_hw[0] / lb.resized_hw[1] - hw[0] / hw[1]) < 0.02  # aspect kept
    assert max(lb.resized_hw) == 640


def test_fixed_size_model_gets_a_square() -> None:
    lb = plan_letterbox((800, 1200), (0, 0, 1200, 800), InputSpec(dynamic_hw=False))
    assert lb.input_hw == (640, 640) and lb.resized_hw == (427, 640)
    assert lb.pad_top_px == (640 - 427) // 2 and lb.pad_left_px == 0


def test_letterbox_box_round_trip() -> None:
    rng = np.random.default_rng(0)
    for hw, crop in [((700, 1024), (100, 50, 900, 650)), ((300, 2000), (0, 0, 2000, 300)), ((50, 60), (0, 0, 60, 50))]:
        for dynamic in (True, False):
            lb = plan_letterbox(hw, crop, InputSpec(dynamic_hw=dynamic))
            x0, y0, x1, y1 = crop
            a = rng.uniform([x0, y0], [x1, y1], size=(20, 2))
            b = rng.uniform([x0, y0], [x1, y1], size=(20, 2))
            boxes = np.concatenate([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.float32)
            model = lb.to_model(boxes)
            assert model.min() >= -1e-3 and model[:, 2].max() <= lb.input_hw[1] + 1e-3
            np.testing.assert_allclose(lb.to_source(model), boxes, atol=1e-3)


def test_content_box_finds_the_parcel_with_margin() -> None:
    image = np.full((600, 1024, 3), 255, np.uint8)
    image[200:300, 400:700] = (250, 120, 30)
    image[50, 10] = (245, 245, 245)  # faint noise above the background threshold stays background
    box = np.array(content_box(image, CropSpec(margin_px=16)))
    exact = np.array([384, 184, 716, 316])  # content plus 16 px; decimation may add up to 2 samples of 4 px
    assert np.all(box[:2] <= exact[:2]) and np.all(box[:2] >= exact[:2] - 8)
    assert np.all(box[2:] >= exact[2:]) and np.all(box[2:] <= exact[2:] + 8)
    small = np.full((40, 50, 3), 255, np.uint8)
    small[10:20, 5:15] = 0
    assert content_box(small, CropSpec(margin_px=2)) == (3, 8, 17, 22)  # small images: exact, no decimation
    assert content_box(image, CropSpec(enabled=False)) == (0, 0, 1024, 600)
    assert content_box(np.full((10, 20, 3), 255, np.uint8), CropSpec()) == (0, 0, 20, 10)  # only air: whole image
    fg = np.zeros((600, 1024), bool)
    fg[10:20, 30:40] = True
    assert content_box(image, CropSpec(margin_px=0), foreground=fg) == (30, 10, 40, 20)


def test_batch_buffer_normalises_and_pads() -> None:
    spec = InputSpec(
        size_hw=(64, 64), normalisation=Normalisation(scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.5, 1, 2))
    )
    buf = BatchBuffer(spec, max_batch=2)
    a = np.zeros((32, 64, 3), np.uint8)
    a[..., 0] = 255
    b = np.full((64, 32, 3), 51, np.uint8)
    lbs = [plan_letterbox(x.shape[:2], (0, 0, x.shape[1], x.shape[0]), spec) for x in (a, b)]
    batch = buf.fill([a, b], lbs)
    assert batch.shape == (2, 3, 64, 64) and batch.flags.c_contiguous
    np.testing.assert_allclose(batch[0, :, 0, 0], [(1 - 0.5) / 0.5, (0 - 0.5) / 1, (0 - 0.5) / 2], atol=1e-6)
    pad = 114 / 255
    np.testing.assert_allclose(batch[0, :, 40, 0], [(pad - 0.5) / 0.5, (pad - 0.5) / 1, (pad - 0.5) / 2], atol=1e-6)
    np.testing.assert_allclose(batch[1, 1, 10, 10], (0.2 - 0.5) / 1, atol=1e-6)
    bgr = BatchBuffer(InputSpec(size_hw=(64, 64), colour_order="BGR"), 1).fill([a], lbs[:1])
    assert bgr[0, 2, 0, 0] == pytest.approx(1.0) and bgr[0, 0, 0, 0] == 0.0


def _reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    iou = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if not keep or float(iou[i, keep].max()) <= thr:
            keep.append(i)
    return keep


@pytest.mark.parametrize("n", [0, 1, 30, 1500])
def test_nms_matches_a_brute_force_reference(n: int) -> None:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 500, size=(n, 2))
    wh = rng.uniform(10, 120, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.permutation(np.linspace(0.3, 1.0, n)).astype(np.float32)
    kept = nms(boxes, scores, 0.45, 10000)
    assert list(kept) == _reference_nms(boxes, scores, 0.45)


def test_decode_is_class_aware_and_respects_thresholds() -> None:
    nc = 3
    # anchors: two overlapping boxes of class 0, one overlapping of class 1, one below conf
    cx = [100, 104, 102, 300]
    cy = [100, 100, 100, 300]
    w = [50, 50, 50, 40]
    h = [50, 50, 50, 40]
    cls = np.zeros((nc, 4), np.float32)
    cls[0, 0], cls[0, 1], cls[1, 2], cls[2, 3] = 0.9, 0.8, 0.7, 0.1
    pred = np.concatenate([np.array([cx, cy, w, h], np.float32), cls])
    raw = decode_yolo_v8(pred, NmsParams(conf=0.25, iou=0.45))
    assert raw.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(raw.scores, [0.9, 0.7])
    np.testing.assert_allclose(raw.xyxy[0], [75, 75, 125, 125])
    agnostic = decode_yolo_v8(pred, NmsParams(conf=0.25, iou=0.45, class_aware=False))
    assert agnostic.class_ids.tolist() == [0]
    assert decode_yolo_v8(pred, NmsParams(conf=0.95)).scores.size == 0
    limited = decode_yolo_v8(pred, NmsParams(conf=0.05, iou=0.45, max_det=2))
    assert limited.scores.size == 2


def _raw(boxes: list[list[float]], scores: list[float], ids: list[int]) -> RawDetections:
    return RawDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), np.asarray(ids, np.int32)
    )


def test_view_boxes_map_back_to_the_input_tensor() -> None:
    raw = _raw([[10, 20, 50, 40]], [0.9], [3])
    m = from_view(raw, (64, 128), flip_x=True, flip_y=True)
    np.testing.assert_allclose(m.xyxy, [[78, 24, 118, 44]])
    np.testing.assert_allclose(from_view(m, (64, 128), flip_x=True, flip_y=True).xyxy, raw.xyxy)
    np.testing.assert_allclose(from_view(raw, (64, 128), flip_x=False, flip_y=True).xyxy, [[10, 24, 50, 44]])
    # a box on the transposed, left-right mirrored view of a 128 x 64 tensor (the view is 64 x 128)
    tensor = np.zeros((128, 64), np.uint8)
    tensor[30:70, 5:25] = 1  # rows 30-70, columns 5-25: xyxy (5, 30, 25, 70)
    view = tensor.T[:, ::-1]
    ys, xs = np.nonzero(view)
    found = _raw([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.9], [3])
    back = from_view(found, view.shape, flip_x=True, flip_y=False, transposed=True)  # type: ignore[arg-type]
    np.testing.assert_allclose(back.xyxy, [[5, 30, 25, 70]])


def test_fused_views_keep_consistent_objects_and_divide_lone_boxes() -> None:
    seen_by_all = [_raw([[100, 100, 200, 200]], [0.8], [0]) for _ in range(4)]
    lone = [_raw([[300, 300, 340, 340]], [0.8], [1])] + [_raw([], [], [])] * 3
    fused = fuse_views(
        [
            _raw(np.vstack([a.xyxy, b.xyxy]).tolist(), [*a.scores, *b.scores], [*a.class_ids, *b.class_ids])
            for a, b in zip(seen_by_all, lone, strict=True)
        ],
        iou=0.55,
        conf=0.1,
        max_det=10,
    )
    assert fused.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(fused.scores, [0.8, 0.2], rtol=1e-6)
    np.testing.assert_allclose(fused.xyxy[0], [100, 100, 200, 200])
    # under the floor once fused: dropped
    assert len(fuse_views(lone, iou=0.55, conf=0.25, max_det=10).scores) == 0


def test_fusion_weights_boxes_by_score_and_never_merges_classes_or_one_views_boxes() -> None:
    a = _raw([[0, 0, 100, 100], [0, 0, 100, 100]], [0.9, 0.3], [2, 5])
    b = _raw([[10, 0, 110, 100], [5, 0, 105, 100]], [0.3, 0.6], [2, 2])  # two boxes of class 2 in one view
    fused = fuse_views([a, b], iou=0.55, conf=0.0, max_det=10)
    by = {
        (int(c), round(float(s), 3)): box for c, s, box in zip(fused.class_ids, fused.scores, fused.xyxy, strict=True)
    }
    # class 2: a's 0.9 pairs with b's best overlapping box (0.6 at x0=5); b's 0.3 box stays alone
    assert set(by) == {(2, 0.75), (2, 0.15), (5, 0.15)}
    np.testing.assert_allclose(by[(2, 0.75)], [0.9 * 0 / 1.5 + 0.6 * 5 / 1.5, 0, 100 + 0.6 * 5 / 1.5, 100], rtol=1e-5)
    assert fused.scores.tolist() == sorted(fused.scores.tolist(), reverse=True)
    assert len(fuse_views([a, b], iou=0.55, conf=0.0, max_det=2).scores) == 2
    with pytest.raises(ValueError):
        fuse_views([], iou=0.5, conf=0.1, max_det=1)
