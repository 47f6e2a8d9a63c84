"""Detection metrics in numpy: COCO-style AP, PR curves, and the screening operating point.

Definitions (stated here because every number in a model card depends on them):

* **AP** per class: predictions sorted by score, each matched greedily to the unmatched ground
  truth of the same class with the highest IoU >= t; precision made monotone; mean precision
  at the 101 recall points 0, 0.01, ..., 1 (COCO). mAP50 uses t = 0.5; mAP50-95 averages
  t = 0.50, 0.55, ..., 0.95. Classes without ground truth are left out of the mean.
* **Prohibited-item recall** at a score threshold: the share of ground-truth objects of
  prohibited classes (``ThreatClass.prohibited``) matched by a prediction of the *same class*
  with IoU >= 0.5 and score >= threshold.
* **Clean-parcel false-alarm rate**: the share of images without any ground truth (clean
  parcels) holding at least one prediction of a prohibited class with score >= threshold.
  ``false_alarm_rate_any`` counts predictions of any class.
* **Operating point for a target false-alarm rate**: the lowest threshold whose clean-parcel
  false-alarm rate is at most the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IOU_THRESHOLDS: npt.NDArray[np.float64] = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_POINTS: npt.NDArray[np.float64] = np.linspace(0.0, 1.0, 101)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class ImageBoxes:
    """Boxes of one image (ground truth: scores all 1)."""

    xyxy: FloatArray  # (n, 4) pixels
    class_ids: IntArray  # (n,)
    scores: FloatArray  # (n,)

    @classmethod
    def truth(cls, xyxy: FloatArray, class_ids: IntArray) -> ImageBoxes:
        return cls(xyxy, class_ids, np.ones(len(class_ids), np.float32))

    @classmethod
    def empty(cls) -> ImageBoxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.class_ids.shape[0])


def box_iou(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """IoU matrix (len(a), len(b)) of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    tl = np.maximum(a64[:, None, :2], b64[None, :, :2])
    br = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0.0, None), axis=2)
    area_a = np.prod(a64[:, 2:] - a64[:, :2], axis=1)
    area_b = np.prod(b64[:, 2:] - b64[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_image(
    truth: ImageBoxes, pred: ImageBoxes, iou_thresholds: npt.NDArray[np.float64] = IOU_THRESHOLDS
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Greedy same-class matching in score order.

    Returns (pred_tp (n_pred, T), truth_hit (n_truth, T)): whether each prediction is a true
    positive and whether each ground-truth object was found, per IoU threshold.
    """
    n_t = len(iou_thresholds)
    tp = np.zeros((len(pred), n_t), bool)
    hit = np.zeros((len(truth), n_t), bool)
    if len(pred) == 0 or len(truth) == 0:
        return tp, hit
    iou = box_iou(pred.xyxy, truth.xyxy)
    iou[pred.class_ids[:, None] != truth.class_ids[None, :]] = 0.0
    order = np.argsort(-pred.scores, kind="stable")
    for k, t in enumerate(iou_thresholds):
        taken = np.zeros(len(truth), bool)
        for p in order:
            candidates = np.where(~taken & (iou[p] >= t - 1e-12), iou[p], -1.0)
            g = int(np.argmax(candidates))
            if candidates[g] >= 0.0:
                taken[g] = True
                tp[p, k] = True
        hit[:, k] = taken
    return tp, hit


def average_precision(
    tp: npt.NDArray[np.bool_], scores: FloatArray, n_truth: int
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """COCO 101-point AP of one class at one IoU threshold; returns (ap, recall, precision) curves."""
    if n_truth == 0:
        return float("nan"), np.zeros(0), np.zeros(0)
    if len(tp) == 0:
        return 0.0, np.zeros(0), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    return _ap101(np.cumsum(hits), np.cumsum(1.0 - hits), n_truth)


def _ap101(
    ctp: npt.NDArray[np.float64], cfp: npt.NDArray[np.float64], n_truth: float
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """101-point AP from cumulative true/false positives in score order; returns (ap, recall, precision)."""
    recall = ctp / n_truth
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(np.mean(sampled)), recall, precision


@dataclass(frozen=True, slots=True)
class ClassAP:
    name: str
    n_truth: int
    n_pred: int
    ap50: float
    ap50_95: float
    recall_curve: npt.NDArray[np.float64] = field(repr=False)
    precision_curve: npt.NDArray[np.float64] = field(repr=False)
    scores_sorted: npt.NDArray[np.float32] = field(repr=False)


@dataclass(frozen=True, slots=True)
class DetectionMetrics:
    map50: float
    map50_95: float
    per_class: tuple[ClassAP, ...]


def detection_metrics(
    truths: Sequence[ImageBoxes], preds: Sequence[ImageBoxes], class_names: Sequence[str]
) -> DetectionMetrics:
    if len(truths) != len(preds):
        raise ValueError(f"{len(truths)} ground-truth images but {len(preds)} prediction sets")
    nc = len(class_names)
    tp_parts: list[npt.NDArray[np.bool_]] = []
    score_parts: list[FloatArray] = []
    cls_parts: list[IntArray] = []
    n_truth = np.zeros(nc, np.int64)
    for truth, pred in zip(truths, preds, strict=True):
        tp, _ = match_image(truth, pred)
        tp_parts.append(tp)
        score_parts.append(pred.scores)
        cls_parts.append(pred.class_ids)
        n_truth += np.bincount(truth.class_ids, minlength=nc)[:nc]
    tp_all = np.concatenate(tp_parts) if tp_parts else np.zeros((0, len(IOU_THRESHOLDS)), bool)
    scores_all = np.concatenate(score_parts) if score_parts else np.zeros(0, np.float32)
    cls_all = np.concatenate(cls_parts) if cls_parts else np.zeros(0, np.int32)
    per_class: list[ClassAP] = []
    for c, name in enumerate(class_names):
        mask = cls_all == c
        aps = []
        curves: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] = (np.zeros(0), np.zeros(0))
        for k in range(len(IOU_THRESHOLDS)):
            ap, rec, prec = average_precision(tp_all[mask, k], scores_all[mask], int(n_truth[c]))
            aps.append(ap)
            if k == 0:
                curves = (rec, prec)
        scores_sorted = np.sort(scores_all[mask])[::-1].astype(np.float32)
        per_class.append(
            ClassAP(
                name, int(n_truth[c]), int(mask.sum()), aps[0], float(np.mean(aps)), curves[0], curves[1], scores_sorted
            )
        )
    present = [c for c in per_class if c.n_truth > 0]
    map50 = float(np.mean([c.ap50 for c in present])) if present else float("nan")
    map50_95 = float(np.mean([c.ap50_95 for c in present])) if present else float("nan")
    return DetectionMetrics(map50=map50, map50_95=map50_95, per_class=tuple(per_class))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    prohibited_total: int
    prohibited_found: int
    prohibited_recall: float
    clean_images: int
    clean_alarms: int
    false_alarm_rate: float
    false_alarm_rate_any: float
    threat_images: int
    threat_images_alarmed: int  # images with a prohibited object and >= 1 prohibited prediction over threshold
    per_class_recall: dict[str, float]


def _above(pred: ImageBoxes, threshold: float) -> ImageBoxes:
    keep = pred.scores >= threshold
    return ImageBoxes(pred.xyxy[keep], pred.class_ids[keep], pred.scores[keep])


def operating_point(
    truths: Sequence[ImageBoxes],
    preds: Sequence[ImageBoxes],
    class_names: Sequence[str],
    prohibited: frozenset[str],
    threshold: float,
    iou: float = 0.5,
) -> OperatingPoint:
    prohibited_ids = np.array([i for i, n in enumerate(class_names) if n in prohibited], np.int32)
    total = found = clean = clean_alarms = clean_any = threat_images = threat_alarmed = 0
    per_class_total = np.zeros(len(class_names), np.int64)
    per_class_found = np.zeros(len(class_names), np.int64)
    for truth, pred in zip(truths, preds, strict=True):
        kept = _above(pred, threshold)
        alarm = bool(np.isin(kept.class_ids, prohibited_ids).any())
        if len(truth) == 0:
            clean += 1
            clean_alarms += int(alarm)
            clean_any += int(len(kept) > 0)
            continue
        _, hit = match_image(truth, kept, np.array([iou]))
        is_prohibited = np.isin(truth.class_ids, prohibited_ids)
        total += int(is_prohibited.sum())
        found += int((hit[:, 0] & is_prohibited).sum())
        np.add.at(per_class_total, truth.class_ids, 1)
        np.add.at(per_class_found, truth.class_ids[hit[:, 0]], 1)
        if is_prohibited.any():
            threat_images += 1
            threat_alarmed += int(alarm)
    return OperatingPoint(
        threshold=float(threshold),
        prohibited_total=total,
        prohibited_found=found,
        prohibited_recall=found / total if total else float("nan"),
        clean_images=clean,
        clean_alarms=clean_alarms,
        false_alarm_rate=clean_alarms / clean if clean else float("nan"),
        false_alarm_rate_any=clean_any / clean if clean else float("nan"),
        threat_images=threat_images,
        threat_images_alarmed=threat_alarmed,
        per_class_recall={
            n: float(per_class_found[i] / per_class_total[i]) for i, n in enumerate(class_names) if per_class_total[i]
        },
    )


MISS_CATEGORIES = ("found", "below_threshold", "poor_box", "wrong_class", "missed")


@dataclass(frozen=True, slots=True)
class MissBreakdown:
    """Where each prohibited ground-truth object ends up at one score threshold (first category that applies).

    * ``found``: counted in the recall (same class, IoU >= 0.5, score >= threshold);
    * ``below_threshold``: a same-class box with IoU >= 0.5 exists but scores under the threshold;
    * ``poor_box``: the best same-class box overlaps only 0.1 <= IoU < 0.5;
    * ``wrong_class``: a box of another class covers it (IoU >= 0.5);
    * ``missed``: nothing near it.

    ``median_size_px``: median sqrt(box area) of the objects in each category, in source-image pixels.
    """

    threshold: float
    counts: dict[str, int]
    median_size_px: dict[str, float]
    per_class: dict[str, dict[str, int]]


def miss_breakdown(
    truths: Sequence[ImageBoxes],
    preds: Sequence[ImageBoxes],
    class_names: Sequence[str],
    prohibited: frozenset[str],
    threshold: float,
) -> MissBreakdown:
    prohibited_ids = {i for i, n in enumerate(class_names) if n in prohibited}
    sizes: dict[str, list[float]] = {c: [] for c in MISS_CATEGORIES}
    per_class: dict[str, dict[str, int]] = {}
    for truth, pred in zip(truths, preds, strict=True):
        if len(truth) == 0:
            continue
        _, hit = match_image(truth, _above(pred, threshold), np.array([0.5]))
        iou = box_iou(truth.xyxy, pred.xyxy)
        for j, c in enumerate(truth.class_ids.tolist()):
            if c not in prohibited_ids:
                continue
            same = iou[j][pred.class_ids == c]
            other = iou[j][pred.class_ids != c]
            best_same = float(same.max()) if len(same) else 0.0
            if hit[j, 0]:
                category = "found"
            elif best_same >= 0.5:
                category = "below_threshold"
            elif best_same >= 0.1:
                category = "poor_box"
            elif len(other) and float(other.max()) >= 0.5:
                category = "wrong_class"
            else:
                category = "missed"
            x1, y1, x2, y2 = truth.xyxy[j].tolist()
            sizes[category].append(math.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0)))
            row = per_class.setdefault(class_names[c], dict.fromkeys(MISS_CATEGORIES, 0))
            row[category] += 1
    return MissBreakdown(
        threshold=float(threshold),
        counts={c: len(v) for c, v in sizes.items()},
        median_size_px={c: float(np.median(v)) if v else float("nan") for c, v in sizes.items()},
        per_class=per_class,
    )


@dataclass(frozen=True, slots=True)
class CleanAlarm:
    """The most confident prohibited-class prediction on one clean image (no ground truth)."""

    index: int  # position of the image in the evaluated sequence
    class_name: str
    score: float


def top_clean_alarms(
    truths: Sequence[ImageBoxes],
    preds: Sequence[ImageBoxes],
    class_names: Sequence[str],
    prohibited: frozenset[str],
    top: int = 10,
) -> tuple[CleanAlarm, ...]:
    """The ``top`` clean images with the highest prohibited-class score, highest first.

    These set the operating threshold (:func:`threshold_for_false_alarm_rate`): at a 3 % budget on 143 clean
    parcels the fifth of them does, so they are what hard-negative training has to push down.
    """
    prohibited_ids = np.array([i for i, n in enumerate(class_names) if n in prohibited], np.int32)
    alarms: list[CleanAlarm] = []
    for index, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        if len(truth):
            continue
        mask = np.isin(pred.class_ids, prohibited_ids)
        if not mask.any():
            continue
        best = int(np.argmax(np.where(mask, pred.scores, -np.inf)))
        alarms.append(CleanAlarm(index, class_names[int(pred.class_ids[best])], float(pred.scores[best])))
    alarms.sort(key=lambda a: (-a.score, a.index))
    return tuple(alarms[:top])


def threshold_for_false_alarm_rate(
    truths: Sequence[ImageBoxes],
    preds: Sequence[ImageBoxes],
    class_names: Sequence[str],
    prohibited: frozenset[str],
    target_rate: float,
    floor: float = 0.001,
) -> float:
    """Lowest score threshold whose clean-parcel false-alarm rate is <= ``target_rate``."""
    prohibited_ids = np.array([i for i, n in enumerate(class_names) if n in prohibited], np.int32)
    clean_max: list[float] = []
    for truth, pred in zip(truths, preds, strict=True):
        if len(truth):
            continue
        mask = np.isin(pred.class_ids, prohibited_ids)
        clean_max.append(float(pred.scores[mask].max()) if mask.any() else 0.0)
    if not clean_max:
        raise ValueError("no clean images (without ground truth): the false-alarm rate cannot be measured")
    ordered = np.sort(np.asarray(clean_max))[::-1]
    allowed = int(np.floor(target_rate * len(ordered) + 1e-9))
    if allowed >= len(ordered):
        return floor
    # alarms are score >= threshold: sit just above the (allowed+1)-th highest clean score
    return max(floor, float(np.nextafter(np.float32(ordered[allowed]), np.float32(np.inf))))


@dataclass(frozen=True, slots=True)
class DeltaInterval:
    """Paired-bootstrap interval of one class's AP50 difference (candidate minus baseline)."""

    name: str
    low: float
    high: float


def _weighted_ap(
    hits: npt.NDArray[np.float64], image_of: npt.NDArray[np.int64], weights: npt.NDArray[np.float64], n_truth: float
) -> float:
    """101-point AP of predictions already in score order, each image counted ``weights[image]`` times."""
    if n_truth <= 0:
        return float("nan")
    if len(hits) == 0:
        return 0.0
    w = weights[image_of]
    return _ap101(np.cumsum(w * hits), np.cumsum(w * (1.0 - hits)), n_truth)[0]


def _ap50_inputs(
    truths: Sequence[ImageBoxes], preds: Sequence[ImageBoxes], nc: int
) -> tuple[list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]], npt.NDArray[np.int64]]:
    """Per class: IoU-0.5 hit flags in score order and the image of each; and ground truth per image and class."""
    hits, scores, classes, images = [], [], [], []
    truth_counts = np.zeros((len(truths), nc), np.int64)
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        tp, _ = match_image(truth, pred, np.array([0.5]))
        hits.append(tp[:, 0])
        scores.append(pred.scores)
        classes.append(pred.class_ids)
        images.append(np.full(len(pred), i, np.int64))
        truth_counts[i] = np.bincount(truth.class_ids, minlength=nc)[:nc]
    hit_all = np.concatenate(hits).astype(np.float64) if hits else np.zeros(0)
    score_all = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    cls_all = np.concatenate(classes) if classes else np.zeros(0, np.int32)
    img_all = np.concatenate(images) if images else np.zeros(0, np.int64)
    per_class = []
    for c in range(nc):
        mask = cls_all == c
        order = np.argsort(-score_all[mask], kind="stable")
        per_class.append((hit_all[mask][order], img_all[mask][order]))
    return per_class, truth_counts


def paired_bootstrap_ap50_delta(
    truths: Sequence[ImageBoxes],
    preds_candidate: Sequence[ImageBoxes],
    preds_baseline: Sequence[ImageBoxes],
    class_names: Sequence[str],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[DeltaInterval, ...]:
    """Two-sided ``confidence`` percentile interval of AP50(candidate) - AP50(baseline) per class.

    Images are resampled with replacement and both models are scored on the same resample (paired), so what
    the two share (hard parcels, easy parcels) cancels and the interval shows how far a class's AP difference
    moves with the choice of test parcels. Classes without ground truth get NaN bounds.
    """
    if not (len(truths) == len(preds_candidate) == len(preds_baseline)):
        raise ValueError("truths and both prediction sets must cover the same images")
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("resamples must be >= 1 and confidence in (0, 1)")
    nc = len(class_names)
    cand, counts = _ap50_inputs(truths, preds_candidate, nc)
    base, _ = _ap50_inputs(truths, preds_baseline, nc)
    rng = np.random.default_rng(seed)
    n = len(truths)
    deltas = np.full((resamples, nc), np.nan)
    for r in range(resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        n_truth = weights @ counts
        for c in range(nc):
            if n_truth[c] > 0:
                deltas[r, c] = _weighted_ap(*cand[c], weights, n_truth[c]) - _weighted_ap(*base[c], weights, n_truth[c])
    tail = (1.0 - confidence) / 2.0 * 100.0
    out = []
    for c, name in enumerate(class_names):
        column = deltas[:, c][np.isfinite(deltas[:, c])]
        if counts[:, c].sum() == 0 or len(column) == 0:
            out.append(DeltaInterval(name, float("nan"), float("nan")))
        else:
            low, high = np.percentile(column, [tail, 100.0 - tail])
            out.append(DeltaInterval(name, float(low), float(high)))
    return tuple(out)
