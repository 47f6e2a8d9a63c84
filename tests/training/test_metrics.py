"""AP, operating point and promotion check against hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smartscreen.training.evaluate import EvalReport, build_report, compare_reports
from smartscreen.training.metrics import (
    ImageBoxes,
    average_precision,
    box_iou,
    detection_metrics,
    match_image,
    miss_breakdown,
    operating_point,
    paired_bootstrap_ap50_delta,
    threshold_for_false_alarm_rate,
    top_clean_alarms,
)

NAMES = ("gun", "pliers", "knife")  # gun and knife prohibited, pliers not
PROHIBITED = frozenset({"gun", "knife"})


def boxes(rows: list[tuple[int, float, float, float, float]], scores: list[float] | None = None) -> ImageBoxes:
    xyxy = np.array([r[1:] for r in rows], np.float32).reshape(-1, 4)
    ids = np.array([r[0] for r in rows], np.int32)
    s = np.array(scores if scores is not None else [1.0] * len(rows), np.float32)
    return ImageBoxes(xyxy, ids, s)


def test_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]], np.float32), np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32))
    assert iou[0, 0] == pytest.approx(50 / 150)
    assert iou[0, 1] == 0.0


def test_ap_hand_computed() -> None:
    # 2 objects; predictions TP 0.9, FP 0.8, TP 0.7: precision 1 up to recall 0.5, then 2/3 up to 1
    tp = np.array([True, False, True])
    ap, recall, precision = average_precision(tp, np.array([0.9, 0.8, 0.7], np.float32), 2)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert recall.tolist() == [0.5, 0.5, 1.0]
    assert precision[-1] == pytest.approx(2 / 3)
    assert average_precision(np.zeros(0, bool), np.zeros(0, np.float32), 3)[0] == 0.0
    assert math.isnan(average_precision(np.zeros(0, bool), np.zeros(0, np.float32), 0)[0])


def test_matching_needs_same_class_and_is_greedy_by_score() -> None:
    truth = boxes([(0, 0, 0, 10, 10)])
    pred = boxes([(2, 0, 0, 10, 10), (0, 1, 0, 11, 10), (0, 0, 0, 10, 10)], [0.99, 0.9, 0.5])
    tp, hit = match_image(truth, pred, np.array([0.5]))
    assert tp[:, 0].tolist() == [False, True, False]  # wrong class; highest-scored same class wins; duplicate is FP
    assert hit[:, 0].tolist() == [True]


def test_perfect_and_imperfect_map() -> None:
    truths = [boxes([(0, 0, 0, 10, 10), (2, 20, 20, 40, 30)]), boxes([]), boxes([(1, 5, 5, 25, 25)])]
    perfect = [
        boxes([(0, 0, 0, 10, 10), (2, 20, 20, 40, 30)], [0.9, 0.8]),
        boxes([]),
        boxes([(1, 5, 5, 25, 25)], [0.7]),
    ]
    m = detection_metrics(truths, perfect, NAMES)
    assert m.map50 == pytest.approx(1.0) and m.map50_95 == pytest.approx(1.0)
    shifted = [boxes([(0, 2, 0, 12, 10), (2, 20, 20, 40, 30)], [0.9, 0.8]), boxes([]), boxes([], [])]
    m2 = detection_metrics(truths, shifted, NAMES)
    by = {c.name: c for c in m2.per_class}
    assert by["pliers"].ap50 == 0.0 and by["knife"].ap50 == pytest.approx(1.0)
    assert by["gun"].ap50 == pytest.approx(1.0)  # IoU 8/12 = 0.67 >= 0.5
    assert by["gun"].ap50_95 == pytest.approx(0.4)  # IoU 0.667 matches at 0.50, 0.55, 0.60, 0.65: 4 of 10
    assert m2.map50 == pytest.approx(2 / 3)


def test_operating_point_and_threshold_for_target_rate() -> None:
    # ten clean parcels: prohibited-class scores 0.9 and 0.5 in two of them, a pliers (not prohibited) 0.95 in one
    truths = [boxes([]) for _ in range(10)] + [boxes([(0, 0, 0, 10, 10), (2, 50, 50, 60, 70)])]
    preds = [boxes([]) for _ in range(10)] + [boxes([(0, 0, 0, 10, 10), (2, 50, 50, 60, 70)], [0.6, 0.4])]
    preds[0] = boxes([(0, 0, 0, 5, 5)], [0.9])
    preds[1] = boxes([(2, 0, 0, 5, 5)], [0.5])
    preds[2] = boxes([(1, 0, 0, 5, 5)], [0.95])
    t = threshold_for_false_alarm_rate(truths, preds, NAMES, PROHIBITED, 0.1)
    assert 0.5 < t < 0.5001  # one alarm of ten allowed: just above the second-highest clean score
    op = operating_point(truths, preds, NAMES, PROHIBITED, t)
    assert op.clean_images == 10 and op.clean_alarms == 1 and op.false_alarm_rate == pytest.approx(0.1)
    assert op.false_alarm_rate_any == pytest.approx(0.2)  # the pliers counts for any-class
    assert op.prohibited_total == 2 and op.prohibited_found == 1  # the knife at 0.4 is below threshold
    assert op.per_class_recall == {"gun": 1.0, "knife": 0.0}
    assert threshold_for_false_alarm_rate(truths, preds, NAMES, PROHIBITED, 0.0) > 0.9
    with pytest.raises(ValueError, match="clean"):
        threshold_for_false_alarm_rate(truths[10:], preds[10:], NAMES, PROHIBITED, 0.03)


def _report_for(
    truths: list[ImageBoxes], preds: list[ImageBoxes], target_far: float | None = None, threshold: float | None = 0.5
) -> EvalReport:
    report, _ = build_report(
        model_id="m@1",
        package="p",
        data="d",
        split="test",
        class_names=NAMES,
        truths=truths,
        preds=preds,
        target_far=target_far,
        threshold=threshold,
        images_per_s=1.0,
    )
    return report


def _report(gun_ap_shift: float) -> EvalReport:
    truths = [boxes([(0, 0, 0, 10, 10)]), boxes([(2, 0, 0, 10, 10)]), boxes([])]
    preds = [
        boxes([(0, 0, 0, 10, 10)] if gun_ap_shift == 0 else [(0, 6, 6, 16, 16)], [0.9]),
        boxes([(2, 0, 0, 10, 10)], [0.8]),
        boxes([]),
    ]
    return _report_for(truths, preds, target_far=0.03, threshold=None)


def test_promotion_check_flags_prohibited_regression_and_roundtrips_json() -> None:
    good, bad = _report(0), _report(1)
    assert good.map50 == pytest.approx(1.0)
    # one clean parcel without detections: every budget allows 0 alarms, both prohibited items found at 0.8+
    assert list(good.far_sweep) == ["0.01", "0.03", "0.05", "0.1"]
    assert all(row["prohibited_recall"] == pytest.approx(1.0) for row in good.far_sweep.values())
    assert all(row["false_alarm_rate"] == 0.0 for row in good.far_sweep.values())
    assert "<= 0.05: " in good.summary()
    assert EvalReport.from_json(good.to_json()).far_sweep == good.far_sweep
    assert compare_reports(good, good).passed
    result = compare_reports(EvalReport.from_json(bad.to_json()), good, tolerance=0.05)
    assert not result.passed
    assert [r.name for r in result.rows if r.regressed] == ["gun"]
    assert "FAIL" in result.summary()
    other = _report(0)
    other.n_images = 99
    with pytest.raises(Exception, match="same data"):
        compare_reports(other, good)


def _guns(n_images: int, missed: int) -> tuple[list[ImageBoxes], list[ImageBoxes]]:
    """One gun per image, then five clean parcels; the model finds each gun except on the first ``missed``
    images (box off target)."""
    truths = [boxes([(0, 0, 0, 10, 10)]) for _ in range(n_images)] + [boxes([]) for _ in range(5)]
    preds = [
        boxes([(0, 30, 30, 40, 40)] if i < missed else [(0, 0, 0, 10, 10)], [0.9 - 0.001 * i]) for i in range(n_images)
    ] + [boxes([]) for _ in range(5)]
    return truths, preds


def test_paired_bootstrap_interval_is_zero_for_identical_models_and_brackets_the_delta() -> None:
    truths, good = _guns(40, 0)
    _, worse = _guns(40, 20)
    same = paired_bootstrap_ap50_delta(truths, good, good, NAMES, resamples=50)
    gun = same[0]
    assert (gun.low, gun.high) == (0.0, 0.0)
    assert math.isnan(same[1].low)  # no pliers in the data
    delta = detection_metrics(truths, worse, NAMES).per_class[0].ap50 - 1.0
    interval = paired_bootstrap_ap50_delta(truths, worse, good, NAMES, resamples=200)[0]
    assert interval.low < delta < interval.high < 0.0
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap_ap50_delta(truths[:-1], worse, good, NAMES)


def test_promotion_check_fails_a_real_drop_and_passes_one_within_noise() -> None:
    truths, good = _guns(40, 0)
    base = _report_for(truths, good)
    for missed, expect_pass in ((20, False), (1, True)):
        _, cand_preds = _guns(40, missed)
        cand = _report_for(truths, cand_preds)
        strict = compare_reports(cand, base, tolerance=0.02)
        assert not strict.passed  # without intervals any drop beyond the tolerance fails
        intervals = paired_bootstrap_ap50_delta(truths, cand_preds, good, NAMES, resamples=200)
        check = compare_reports(cand, base, tolerance=0.02, intervals=intervals)
        assert check.passed is expect_pass
        gun = next(r for r in check.rows if r.name == "gun")
        assert gun.delta < -0.02 and gun.delta_low <= gun.delta
        assert ("within noise" in check.summary()) is expect_pass
        assert json.loads(check.to_json())["classes"][0]["regressed"] is (not expect_pass)


def test_miss_breakdown_puts_each_prohibited_object_in_one_category() -> None:
    truths = [
        boxes([(0, 0, 0, 10, 10), (1, 50, 50, 60, 60)]),  # gun found; pliers not prohibited, not counted
        boxes([(0, 0, 0, 10, 10)]),  # gun box right, score under the threshold
        boxes([(2, 0, 0, 20, 20)]),  # knife, same-class box off target (IoU 0.25)
        boxes([(2, 0, 0, 10, 10)]),  # knife called pliers
        boxes([(0, 0, 0, 30, 30)]),  # gun, nothing near it
        boxes([]),
    ]
    preds = [
        boxes([(0, 0, 0, 10, 10)], [0.9]),
        boxes([(0, 0, 0, 10, 10)], [0.2]),
        boxes([(2, 0, 0, 10, 10)], [0.9]),
        boxes([(1, 0, 0, 10, 10)], [0.9]),
        boxes([(0, 80, 80, 90, 90)], [0.9]),
        boxes([]),
    ]
    result = miss_breakdown(truths, preds, NAMES, PROHIBITED, 0.5)
    assert result.counts == {"found": 1, "below_threshold": 1, "poor_box": 1, "wrong_class": 1, "missed": 1}
    assert result.median_size_px["poor_box"] == pytest.approx(20.0)
    assert result.median_size_px["missed"] == pytest.approx(30.0)
    assert result.per_class["knife"] == {"found": 0, "below_threshold": 0, "poor_box": 1, "wrong_class": 1, "missed": 0}
    # at a threshold under 0.2 the second gun is found instead
    assert miss_breakdown(truths, preds, NAMES, PROHIBITED, 0.1).counts["found"] == 2
    report = _report_for(truths, preds)
    assert report.miss_breakdown["found"]["count"] == 1.0
    assert "below threshold 1" in report.summary()
    again = EvalReport.from_json(report.to_json())
    assert again.miss_breakdown_per_class == report.miss_breakdown_per_class


def test_clean_false_alarms_name_the_clean_parcels_that_set_the_threshold() -> None:
    truths = [boxes([(0, 0, 0, 10, 10)]), boxes([]), boxes([]), boxes([]), boxes([])]
    preds = [
        boxes([(0, 0, 0, 10, 10)], [0.99]),  # a threat parcel: never a false alarm
        boxes([(1, 0, 0, 10, 10), (2, 5, 5, 9, 9)], [0.95, 0.4]),  # pliers are not prohibited: knife 0.4 counts
        boxes([(0, 0, 0, 10, 10), (2, 0, 0, 5, 5)], [0.7, 0.8]),
        boxes([]),
        boxes([(1, 0, 0, 10, 10)], [0.9]),  # only a non-prohibited class
    ]
    alarms = top_clean_alarms(truths, preds, NAMES, PROHIBITED)
    assert [(a.index, a.class_name, a.score) for a in alarms] == [
        (2, "knife", pytest.approx(0.8)),
        (1, "knife", pytest.approx(0.4)),
    ]
    assert len(top_clean_alarms(truths, preds, NAMES, PROHIBITED, top=1)) == 1

    def report_with(names: list[str]) -> EvalReport:
        report, _ = build_report(
            model_id="m", package="p", data="d", split="test", class_names=NAMES, truths=truths, preds=preds,
            target_far=0.3, threshold=None, images_per_s=1.0, image_names=names,
        )  # fmt: skip
        return report

    names = [f"p{i}.png" for i in range(5)]
    report = report_with(names)
    assert report.clean_false_alarms[0] == {"image": "p2.png", "class": "knife", "score": pytest.approx(0.8)}
    assert "knife 0.80 (p2.png)" in report.summary()
    assert EvalReport.from_json(report.to_json()).clean_false_alarms == report.clean_false_alarms
    with pytest.raises(ValueError, match="image names"):
        report_with(names[:2])
