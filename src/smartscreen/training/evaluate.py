"""``smartscreen eval``: run a model package through the detection engine over a labelled
dataset and report mAP50, mAP50-95, per-class AP, prohibited-item recall at an operating
point and the clean-parcel false-alarm rate, as JSON plus a PR-curve plot; and compare two
packages (the promotion check).

The model runs through :class:`smartscreen.detection.OnnxDetector` - the same preprocessing,
content crop, letterbox, decode and NMS as the screening line - so eval measures what the line
runs. See :mod:`smartscreen.training.metrics` for the exact metric definitions.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.detections import Detections
from smartscreen.domain.taxonomy import PROHIBITED_CLASS_NAMES
from smartscreen.errors import DatasetError
from smartscreen.training.datayaml import load_data_yaml
from smartscreen.training.metrics import (
    MISS_CATEGORIES,
    DeltaInterval,
    DetectionMetrics,
    ImageBoxes,
    OperatingPoint,
    detection_metrics,
    miss_breakdown,
    operating_point,
    paired_bootstrap_ap50_delta,
    threshold_for_false_alarm_rate,
    top_clean_alarms,
)
from smartscreen.training.readers import read_yolo
from smartscreen.training.writer import load_image_bgr

if TYPE_CHECKING:
    from smartscreen.detection.engine import OnnxDetector
    from smartscreen.detection.package import TtaMode

logger = logging.getLogger(__name__)

EVAL_CONF = 0.001  # score floor for mAP: the whole PR curve is needed


class ImageDetector(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def detect_images(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]: ...


def open_detector(
    package_dir: Path,
    *,
    conf: float = EVAL_CONF,
    threads: int = 2,
    tta: TtaMode | None = None,
    verifier: bool = True,
) -> OnnxDetector:
    """The line's detection engine on ``package_dir`` with the score floor lowered to ``conf``.

    ``tta`` overrides the package's test-time augmentation (None: as the package says, like the line);
    ``verifier=False`` leaves out the package's second-look verifier.
    """
    from smartscreen.detection.engine import OnnxDetector

    return OnnxDetector.from_package(
        package_dir, intra_op_threads=threads, conf_threshold=conf, tta=tta, verifier=verifier
    )


FAR_SWEEP = (0.01, 0.03, 0.05, 0.10)  # clean-parcel false-alarm budgets every report also gives recall at


@dataclass(frozen=True, slots=True)
class EvalSettings:
    model: Path
    data: Path
    split: str = ""  # "" -> test if the data.yaml has one, else val
    target_far: float | None = 0.03  # choose the operating threshold for this clean-parcel false-alarm rate
    threshold: float | None = None  # or fix it
    batch: int = 8
    threads: int = 2
    limit: int | None = None  # evaluate only the first N images (quick checks)
    tta: TtaMode | None = None  # test-time augmentation override (None: the package's own, as on the line)
    verifier: bool = True  # run the package's second-look verifier when it has one (as on the line)


@dataclass(slots=True)
class EvalReport:
    model_id: str
    package: str
    data: str
    split: str
    n_images: int
    n_clean: int
    map50: float
    map50_95: float
    per_class: dict[str, dict[str, float]]
    operating_point: dict[str, object]
    images_per_s: float
    definitions: str = field(default="see smartscreen.training.metrics")
    tta: str = "none"  # test-time augmentation the detections were made with (model.yaml tta.mode)
    # prohibited-item recall at the lowest threshold within each clean-parcel false-alarm budget ("0.03" -> ...):
    # one budget rests on a handful of clean parcels, a sweep shows the trade-off
    far_sweep: dict[str, dict[str, float]] = field(default_factory=dict)
    # where the prohibited objects end up at the operating point (MissBreakdown): category -> count, median size
    miss_breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    miss_breakdown_per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    # the clean parcels with the most confident prohibited-class predictions (they set the threshold), highest
    # first: {"image": file name, "class": ..., "score": ...}
    clean_false_alarms: list[dict[str, str | float]] = field(default_factory=list)

    def to_json(self) -> str:
        def clean(value: object) -> object:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        doc = {k: clean(getattr(self, k)) for k in self.__dataclass_fields__}
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        doc = json.loads(text)
        for key in ("map50", "map50_95"):
            doc[key] = float("nan") if doc[key] is None else doc[key]
        for row in doc.get("miss_breakdown", {}).values():
            row["median_size_px"] = float("nan") if row["median_size_px"] is None else row["median_size_px"]
        return cls(**doc)

    def summary(self) -> str:
        op = self.operating_point
        lines = [
            f"{self.model_id} on {self.data} [{self.split}]: {self.n_images} images ({self.n_clean} clean), "
            f"{self.images_per_s:.1f} img/s" + (f" (test-time augmentation: {self.tta})" if self.tta != "none" else ""),
            f"mAP50 {self.map50:.4f}  mAP50-95 {self.map50_95:.4f}",
            f"operating point: score >= {op['threshold']:.4f} ({op['chosen_by']}): prohibited-item recall "
            f"{_fmt(op['prohibited_recall'])} ({op['prohibited_found']}/{op['prohibited_total']}), clean-parcel "
            f"false-alarm rate {_fmt(op['false_alarm_rate'])} ({op['clean_alarms']}/{op['clean_images']}), "
            f"any-class {_fmt(op['false_alarm_rate_any'])}",
        ]
        if self.far_sweep:
            lines.append(
                "prohibited-item recall at clean false-alarm budgets: "
                + ", ".join(f"<= {far}: {_fmt(row['prohibited_recall'])}" for far, row in self.far_sweep.items())
            )
        if self.miss_breakdown:
            lines.append(
                "prohibited objects at the operating point (median size px): "
                + ", ".join(
                    f"{name.replace('_', ' ')} {int(row['count'])}"
                    + (f" ({row['median_size_px']:.0f})" if math.isfinite(row["median_size_px"]) else "")
                    for name, row in self.miss_breakdown.items()
                )
            )
        if self.clean_false_alarms:
            lines.append(
                "most confident clean-parcel alarms: "
                + ", ".join(f"{a['class']} {float(a['score']):.2f} ({a['image']})" for a in self.clean_false_alarms[:5])
            )
        lines += ["class              n    AP50  AP50-95  recall@op"]
        for name, row in self.per_class.items():
            if row["n_truth"]:
                mark = "*" if name in PROHIBITED_CLASS_NAMES else " "
                lines.append(
                    f"{mark}{name:<16} {int(row['n_truth']):>4}  {row['ap50']:.3f}  {row['ap50_95']:.3f}    "
                    f"{_fmt(row.get('recall_at_op', float('nan')))}"
                )
        lines.append("(* prohibited class)")
        return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def load_truth(data_yaml: Path, split: str) -> tuple[str, list[Path], list[ImageBoxes], tuple[str, ...]]:
    data = load_data_yaml(data_yaml)
    if not split:
        split = "test" if data.split_entry("test") else "val"
    if data.split_entry(split) is None:
        raise DatasetError(f"{data_yaml} has no '{split}' split")
    result = read_yolo(data_yaml, splits=(split,))
    for issue in result.issues:
        logger.warning("%s: %s (%s)", issue.file, issue.problem, issue.action)
    paths: list[Path] = []
    truths: list[ImageBoxes] = []
    for image in result.images:
        paths.append(image.image_path)
        ids = np.array([data.class_names.index(b.class_name) for b in image.boxes], np.int32)
        xyxy = np.array([[b.x1_px, b.y1_px, b.x2_px, b.y2_px] for b in image.boxes], np.float32).reshape(-1, 4)
        truths.append(ImageBoxes.truth(xyxy, ids))  # normalised for now: scaled once the image is read
    return split, paths, truths, data.class_names


def run_detector(
    detector: ImageDetector,
    paths: Sequence[Path],
    truths_normalised: Sequence[ImageBoxes],
    batch: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ImageBoxes], list[ImageBoxes], float]:
    """Detect on every image; returns (truths in pixels, predictions, images/s)."""
    truths: list[ImageBoxes] = []
    preds: list[ImageBoxes] = []
    elapsed = 0.0
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        images: list[npt.NDArray[np.uint8]] = []
        for path, truth in zip(chunk, truths_normalised[start : start + batch], strict=True):
            bgr, _ = load_image_bgr(path)
            images.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            h, w = bgr.shape[:2]
            scale = np.array([w, h, w, h], np.float32)
            truths.append(ImageBoxes.truth(truth.xyxy * scale, truth.class_ids))
        t0 = time.perf_counter()
        results = detector.detect_images(images)
        elapsed += time.perf_counter() - t0
        preds.extend(ImageBoxes(det.xyxy, det.class_ids, det.scores) for det in results)
        if progress is not None:
            progress(min(start + batch, len(paths)), len(paths))
    return truths, preds, (len(paths) / elapsed if elapsed > 0 else 0.0)


def build_report(
    *,
    model_id: str,
    package: str,
    data: str,
    split: str,
    class_names: tuple[str, ...],
    truths: Sequence[ImageBoxes],
    preds: Sequence[ImageBoxes],
    target_far: float | None,
    threshold: float | None,
    images_per_s: float,
    tta: str = "none",
    image_names: Sequence[str] = (),
) -> tuple[EvalReport, DetectionMetrics]:
    """``image_names`` (one per truth, or empty) name the clean parcels in ``clean_false_alarms``."""
    if image_names and len(image_names) != len(truths):
        raise ValueError(f"{len(image_names)} image names for {len(truths)} images")
    metrics = detection_metrics(truths, preds, class_names)
    prohibited = PROHIBITED_CLASS_NAMES & frozenset(class_names)
    if threshold is not None:
        chosen_by = "fixed threshold"
        t = threshold
    elif target_far is not None:
        t = threshold_for_false_alarm_rate(truths, preds, class_names, prohibited, target_far)
        chosen_by = f"lowest threshold with clean-parcel false-alarm rate <= {target_far:g} on this data"
    else:
        raise ValueError("give a threshold or a target false-alarm rate")
    op: OperatingPoint = operating_point(truths, preds, class_names, prohibited, t)
    misses = miss_breakdown(truths, preds, class_names, prohibited, t)
    per_class: dict[str, dict[str, float]] = {}
    for c in metrics.per_class:
        row = {"n_truth": float(c.n_truth), "n_pred": float(c.n_pred), "ap50": c.ap50, "ap50_95": c.ap50_95}
        if c.name in op.per_class_recall:
            row["recall_at_op"] = op.per_class_recall[c.name]
        row["prohibited"] = float(c.name in prohibited)
        per_class[c.name] = row
    n_clean = sum(1 for t_ in truths if len(t_) == 0)
    far_sweep: dict[str, dict[str, float]] = {}
    for far in FAR_SWEEP:
        t_far = threshold_for_false_alarm_rate(truths, preds, class_names, prohibited, far)
        op_far = operating_point(truths, preds, class_names, prohibited, t_far)
        far_sweep[f"{far:g}"] = {
            "threshold": t_far,
            "prohibited_recall": op_far.prohibited_recall,
            "false_alarm_rate": op_far.false_alarm_rate,
        }
    report = EvalReport(
        model_id=model_id,
        package=package,
        data=data,
        split=split,
        n_images=len(truths),
        n_clean=n_clean,
        map50=metrics.map50,
        map50_95=metrics.map50_95,
        per_class=per_class,
        operating_point={
            "threshold": op.threshold,
            "chosen_by": chosen_by,
            "prohibited_recall": op.prohibited_recall,
            "prohibited_found": op.prohibited_found,
            "prohibited_total": op.prohibited_total,
            "false_alarm_rate": op.false_alarm_rate,
            "false_alarm_rate_any": op.false_alarm_rate_any,
            "clean_alarms": op.clean_alarms,
            "clean_images": op.clean_images,
            "threat_parcels": op.threat_images,
            "threat_parcels_alarmed": op.threat_images_alarmed,
        },
        images_per_s=images_per_s,
        tta=tta,
        far_sweep=far_sweep,
        miss_breakdown={
            name: {"count": float(misses.counts[name]), "median_size_px": misses.median_size_px[name]}
            for name in MISS_CATEGORIES
        },
        miss_breakdown_per_class={
            cls: {name: float(n) for name, n in row.items()} for cls, row in misses.per_class.items()
        },
        clean_false_alarms=[
            {
                "image": image_names[a.index] if image_names else f"#{a.index}",
                "class": a.class_name,
                "score": a.score,
            }
            for a in top_clean_alarms(truths, preds, class_names, prohibited)
        ],
    )
    return report, metrics


@dataclass(frozen=True, slots=True)
class Predictions:
    """One package's detections over one split, with the ground truth in pixels (paired image by image)."""

    model_id: str
    split: str
    class_names: tuple[str, ...]
    truths: tuple[ImageBoxes, ...]
    preds: tuple[ImageBoxes, ...]
    images_per_s: float
    tta: str = "none"
    image_names: tuple[str, ...] = ()  # file names, one per image


def predict(settings: EvalSettings, progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Run ``settings.model`` through the detection engine over the split's labelled images."""
    split, paths, truths_n, class_names = load_truth(settings.data, settings.split)
    if settings.limit is not None:
        paths, truths_n = paths[: settings.limit], truths_n[: settings.limit]
    if not paths:
        raise DatasetError(f"{settings.data} [{split}] holds no labelled images")
    detector = open_detector(settings.model, threads=settings.threads, tta=settings.tta, verifier=settings.verifier)
    if tuple(detector.class_names) != tuple(class_names):
        raise DatasetError(
            f"the model's classes {detector.class_names} differ from the dataset's {class_names}; convert the "
            "dataset to the taxonomy first (smartscreen dataset convert)"
        )
    truths, preds, ips = run_detector(detector, paths, truths_n, settings.batch, progress)
    return Predictions(
        detector.model_id,
        split,
        class_names,
        tuple(truths),
        tuple(preds),
        ips,
        detector.tta.mode,
        tuple(p.name for p in paths),
    )


def report_for(settings: EvalSettings, predictions: Predictions) -> tuple[EvalReport, DetectionMetrics]:
    return build_report(
        model_id=predictions.model_id,
        package=str(settings.model),
        data=str(settings.data),
        split=predictions.split,
        class_names=predictions.class_names,
        truths=predictions.truths,
        preds=predictions.preds,
        target_far=settings.target_far,
        threshold=settings.threshold,
        images_per_s=predictions.images_per_s,
        tta=predictions.tta,
        image_names=predictions.image_names,
    )


def evaluate(
    settings: EvalSettings, progress: Callable[[int, int], None] | None = None
) -> tuple[EvalReport, DetectionMetrics]:
    return report_for(settings, predict(settings, progress))


def ap50_delta_intervals(
    candidate: Predictions, baseline: Predictions, *, resamples: int = 1000, seed: int = 0
) -> tuple[DeltaInterval, ...]:
    """95 % paired-bootstrap intervals of each class's AP50 change, for the promotion check."""
    if len(candidate.truths) != len(baseline.truths) or candidate.class_names != baseline.class_names:
        raise DatasetError("the two packages were run on different data; evaluate both on the same split")
    return paired_bootstrap_ap50_delta(
        candidate.truths, candidate.preds, baseline.preds, candidate.class_names, resamples=resamples, seed=seed
    )


def plot_pr_curves(metrics: DetectionMetrics, title: str, target: Path) -> Path | None:
    """PR curves at IoU 0.5, one line per class with ground truth. Needs matplotlib (train extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (train extra): no PR-curve plot")
        return None
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    for c in metrics.per_class:
        if c.n_truth and len(c.recall_curve):
            style = "-" if c.name in PROHIBITED_CLASS_NAMES else "--"
            ax.plot(
                c.recall_curve,
                np.maximum.accumulate(c.precision_curve[::-1])[::-1],
                style,
                label=f"{c.name} {c.ap50:.3f}",
            )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\nmAP50 {metrics.map50:.3f} (solid: prohibited classes)")
    if ax.get_lines():
        ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target


@dataclass(frozen=True, slots=True)
class ClassComparison:
    name: str
    prohibited: bool
    baseline_ap50: float
    candidate_ap50: float
    delta: float
    regressed: bool
    delta_low: float = float("nan")  # 95 % paired-bootstrap interval of delta (NaN: not computed)
    delta_high: float = float("nan")


@dataclass(frozen=True, slots=True)
class Comparison:
    passed: bool
    tolerance: float
    rows: tuple[ClassComparison, ...]
    recall_delta: float
    bootstrap: bool = False

    def summary(self) -> str:
        rule = (
            "a prohibited class fails when its AP50 drops by more than the tolerance and the 95 % paired-bootstrap "
            "interval of the drop stays below 0"
            if self.bootstrap
            else "a prohibited class fails when its AP50 drops by more than the tolerance"
        )
        lines = [
            f"promotion check (tolerance {self.tolerance:g} AP50 per prohibited class): "
            f"{'PASS' if self.passed else 'FAIL'}",
            f"  ({rule})",
        ]
        for r in self.rows:
            interval = f" [{r.delta_low:+.3f}, {r.delta_high:+.3f}]" if math.isfinite(r.delta_low) else ""
            # a drop beyond the tolerance that the interval does not show to be real on this data
            noise = r.prohibited and not r.regressed and r.delta < -self.tolerance
            flag = "REGRESSED" if r.regressed else ("within noise" if noise else "")
            lines.append(
                f"{'*' if r.prohibited else ' '}{r.name:<16} {r.baseline_ap50:.3f} -> {r.candidate_ap50:.3f} "
                f"({r.delta:+.3f}){interval} {flag}".rstrip()
            )
        lines.append(f"prohibited-item recall at the operating point: {self.recall_delta:+.4f}")
        return "\n".join(lines)

    def to_json(self) -> str:
        def clean(value: float) -> float | None:
            return value if math.isfinite(value) else None

        doc = {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "bootstrap": self.bootstrap,
            "recall_delta": clean(self.recall_delta),
            "classes": [
                {
                    "name": r.name,
                    "prohibited": r.prohibited,
                    "baseline_ap50": clean(r.baseline_ap50),
                    "candidate_ap50": clean(r.candidate_ap50),
                    "delta": clean(r.delta),
                    "delta_low": clean(r.delta_low),
                    "delta_high": clean(r.delta_high),
                    "regressed": r.regressed,
                }
                for r in self.rows
            ],
        }
        return json.dumps(doc, indent=2)


def compare_reports(
    candidate: EvalReport,
    baseline: EvalReport,
    tolerance: float = 0.02,
    intervals: Sequence[DeltaInterval] = (),
) -> Comparison:
    """The promotion check: the candidate must not lose more than ``tolerance`` AP50 on any prohibited class.

    With ``intervals`` (see :func:`ap50_delta_intervals`) a drop beyond the tolerance fails only when the
    paired-bootstrap interval of the change lies wholly below 0: at 20-40 test objects a class's AP moves by
    +-0.04 between test sets, and a gate tighter than that noise fails good models at random.
    """
    if candidate.data != baseline.data or candidate.split != baseline.split or candidate.n_images != baseline.n_images:
        raise DatasetError("the two reports come from different data; evaluate both packages on the same data")
    by_name = {i.name: i for i in intervals}
    rows: list[ClassComparison] = []
    for name, row in candidate.per_class.items():
        base = baseline.per_class.get(name)
        if base is None or not row["n_truth"]:
            continue
        prohibited = bool(row.get("prohibited"))
        delta = row["ap50"] - base["ap50"]
        interval = by_name.get(name)
        low, high = (interval.low, interval.high) if interval is not None else (float("nan"), float("nan"))
        shown = not math.isfinite(high) or high < 0.0  # without an interval every drop counts
        regressed = prohibited and delta < -tolerance and shown
        rows.append(ClassComparison(name, prohibited, base["ap50"], row["ap50"], delta, regressed, low, high))
    c_rec = candidate.operating_point["prohibited_recall"]
    b_rec = baseline.operating_point["prohibited_recall"]
    recall_delta = (
        float(c_rec) - float(b_rec) if isinstance(c_rec, float) and isinstance(b_rec, float) else float("nan")
    )
    return Comparison(
        passed=not any(r.regressed for r in rows),
        tolerance=tolerance,
        rows=tuple(rows),
        recall_delta=recall_delta,
        bootstrap=bool(intervals),
    )


def record_metrics(package_dir: Path, report: EvalReport, dataset_name: str) -> None:
    """Rewrite only ``model.yaml`` with ``report``'s metrics (validated; the ONNX and every other file kept)."""
    from smartscreen.detection.package import Metrics, update_model_package

    op = report.operating_point
    extra = {
        "operating_threshold": float(op["threshold"]),  # type: ignore[arg-type]
        "prohibited_recall": float(op["prohibited_recall"]),  # type: ignore[arg-type]
        "clean_false_alarm_rate": float(op["false_alarm_rate"]),  # type: ignore[arg-type]
        "clean_false_alarm_rate_any_class": float(op["false_alarm_rate_any"]),  # type: ignore[arg-type]
        "images": float(report.n_images),
        "clean_images": float(report.n_clean),
    }
    metrics = Metrics(
        dataset=dataset_name,
        map50=report.map50,
        map50_95=report.map50_95,
        per_class_ap50={k: round(v["ap50"], 4) for k, v in report.per_class.items() if v["n_truth"]},
        extra={k: round(v, 5) for k, v in extra.items() if math.isfinite(v)},
    )
    update_model_package(package_dir, metrics=metrics)
