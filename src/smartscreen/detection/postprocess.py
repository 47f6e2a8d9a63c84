"""Post-processing: decode YOLO (v8/11) heads and class-aware NMS in numpy, boxes back to source pixels.

Pure numpy (OpenCV's NMS only for very large candidate sets); no model runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.detection.preprocess import Letterbox
from smartscreen.domain.detections import Detections

# offset between classes for class-aware NMS by coordinate shift (as ultralytics' max_wh)
_CLASS_OFFSET_PX = 7680.0
# above this many candidates OpenCV's NMS is used (1.7-2.5x faster than a numpy loop from ~1 000 boxes)
_NUMPY_NMS_MAX = 1000
# never more candidates than this into NMS (as ultralytics' max_nms)
MAX_NMS_CANDIDATES = 30000


@dataclass(frozen=True, slots=True)
class NmsParams:
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300
    class_aware: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise ValueError(f"conf must be in [0, 1], got {self.conf}")
        if not 0.0 < self.iou <= 1.0:
            raise ValueError(f"iou must be in (0, 1], got {self.iou}")
        if self.max_det < 1:
            raise ValueError(f"max_det must be >= 1, got {self.max_det}")


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Boxes of one image in model-input pixels, before mapping back."""

    xyxy: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int32]


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """IoU matrix ``(len(a), len(b))`` of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0), np.float32)


def nms(
    xyxy: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float, max_det: int
) -> npt.NDArray[np.intp]:
    """Greedy NMS: indices of kept boxes, highest score first. Boxes overlapping a kept one by IoU > threshold go."""
    n = xyxy.shape[0]
    if n == 0:
        return np.zeros((0,), np.intp)
    if n > _NUMPY_NMS_MAX:
        wh = xyxy[:, 2:] - xyxy[:, :2]
        rects = np.concatenate([xyxy[:, :2], wh], axis=1).astype(np.float64)
        kept = cv2.dnn.NMSBoxes(rects.tolist(), scores.astype(np.float64).tolist(), 0.0, float(iou_threshold))
        idx = np.asarray(kept, np.intp).reshape(-1)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return idx[:max_det]
    x1, y1, x2, y2 = xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0.0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0.0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.intp)


def decode_yolo_v8(prediction: npt.NDArray[np.floating], params: NmsParams) -> RawDetections:
    """Decode one image's ``(4 + nc, N)`` head output (cx, cy, w, h, class scores) and apply NMS."""
    if prediction.ndim != 2 or prediction.shape[0] < 5:
        raise ValueError(f"a yolo_v8 prediction must have shape (4 + nc, N), got {prediction.shape}")
    class_scores = prediction[4:]
    best = class_scores.max(axis=0)
    candidates = np.flatnonzero(best > params.conf)
    if candidates.size > MAX_NMS_CANDIDATES:
        top = np.argpartition(-best[candidates], MAX_NMS_CANDIDATES)[:MAX_NMS_CANDIDATES]
        candidates = candidates[top]
    if candidates.size == 0:
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32))
    scores = best[candidates].astype(np.float32)
    class_ids = class_scores[:, candidates].argmax(axis=0).astype(np.int32)
    cxcywh = prediction[:4, candidates].astype(np.float32)
    half_w, half_h = cxcywh[2] * 0.5, cxcywh[3] * 0.5
    xyxy = np.stack([cxcywh[0] - half_w, cxcywh[1] - half_h, cxcywh[0] + half_w, cxcywh[1] + half_h], axis=1)
    if params.class_aware:
        shifted = xyxy + (class_ids.astype(np.float32) * _CLASS_OFFSET_PX)[:, None]
        keep = nms(shifted, scores, params.iou, params.max_det)
    else:
        keep = nms(xyxy, scores, params.iou, params.max_det)
    return RawDetections(xyxy[keep], scores[keep], class_ids[keep])


def to_detections(raw: RawDetections, letterbox: Letterbox, class_names: tuple[str, ...], model_id: str) -> Detections:
    """Map model-input boxes to source pixels; boxes that fall wholly in the padding are dropped."""
    xyxy = letterbox.to_source(raw.xyxy)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    if not bool(keep.all()):
        xyxy, scores, class_ids = xyxy[keep], raw.scores[keep], raw.class_ids[keep]
    else:
        scores, class_ids = raw.scores, raw.class_ids
    return Detections(
        xyxy=np.ascontiguousarray(xyxy, np.float32),
        scores=np.ascontiguousarray(scores, np.float32),
        class_ids=np.ascontiguousarray(class_ids, np.int32),
        class_names=class_names,
        model_id=model_id,
    )


# Test-time augmentation (model.yaml ``tta``). Each view is decoded with this score floor (or the detector's own
# floor when lower), so a fused score is within (views - 1) / views * floor of what an unfloored fusion gives.
TTA_VIEW_SCORE_FLOOR = 0.01


def from_view(
    raw: RawDetections, view_hw: tuple[int, int], *, flip_x: bool, flip_y: bool, transposed: bool = False
) -> RawDetections:
    """Boxes found on a view of an input tensor, in the tensor's own coordinates.

    The view of size ``view_hw`` was made by transposing the tensor (height and width swapped) when
    ``transposed``, then mirroring it left-right (``flip_x``) and/or up-down (``flip_y``).
    """
    xyxy = raw.xyxy.copy()
    h, w = view_hw
    if flip_x:
        xyxy[:, 0], xyxy[:, 2] = w - raw.xyxy[:, 2], w - raw.xyxy[:, 0]
    if flip_y:
        xyxy[:, 1], xyxy[:, 3] = h - raw.xyxy[:, 3], h - raw.xyxy[:, 1]
    if transposed:
        xyxy = np.ascontiguousarray(xyxy[:, [1, 0, 3, 2]])
    return RawDetections(xyxy, raw.scores, raw.class_ids)


def fuse_views(views: list[RawDetections], *, iou: float, conf: float, max_det: int) -> RawDetections:
    """One set of boxes from the same image seen in several views (boxes already in one coordinate frame).

    Per class, the highest-scoring unused box takes from every other view its best unused box of that class
    overlapping it by IoU >= ``iou``; the group's box is the score-weighted mean and its score the sum of the
    members' scores divided by the number of views (a view that found nothing counts as score 0). Groups
    scoring under ``conf`` are dropped; at most ``max_det`` are kept, highest first.
    """
    n_views = len(views)
    if n_views == 0:
        raise ValueError("fuse_views needs at least one view")
    xyxy = np.concatenate([v.xyxy for v in views]).astype(np.float32).reshape(-1, 4)
    scores = np.concatenate([v.scores for v in views]).astype(np.float32)
    class_ids = np.concatenate([v.class_ids for v in views]).astype(np.int32)
    view_of = np.concatenate([np.full(len(v.scores), k, np.int32) for k, v in enumerate(views)])
    out_xyxy: list[npt.NDArray[np.float32]] = []
    out_scores: list[float] = []
    out_ids: list[int] = []
    for cls in np.unique(class_ids):
        idx = np.flatnonzero(class_ids == cls)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        boxes, s, v = xyxy[idx], scores[idx], view_of[idx]
        overlaps = box_iou(boxes, boxes)
        used = np.zeros(len(idx), bool)
        for i in range(len(idx)):
            if used[i]:
                continue
            used[i] = True
            members = [i]
            near = ~used & (overlaps[i] >= iou) & (v != v[i])
            for k in np.unique(v[near]):
                j = int(np.flatnonzero(near & (v == k))[0])  # sorted by score: the first is that view's best
                members.append(j)
                used[j] = True
            weight = s[members]
            total = float(weight.sum())
            if total / n_views < conf:
                continue
            out_xyxy.append((boxes[members] * weight[:, None]).sum(axis=0) / max(total, 1e-12))
            out_scores.append(total / n_views)
            out_ids.append(int(cls))
    if not out_scores:
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32))
    order = np.argsort(-np.asarray(out_scores), kind="stable")[:max_det]
    return RawDetections(
        np.asarray(out_xyxy, np.float32)[order],
        np.asarray(out_scores, np.float32)[order],
        np.asarray(out_ids, np.int32)[order],
    )
