from __future__ import annotations

import numpy as np
import pytest

from smartscreen.domain import (
    Decision,
    Detections,
    LineBlock,
    LineRange,
    ParcelScan,
    PersonalData,
    Reason,
    ReasonCode,
    Route,
    Waybill,
)


def _block(n_lines: int = 4, n_channels: int = 8) -> LineBlock:
    return LineBlock(
        high=np.zeros((n_lines, n_channels), np.uint16),
        low=np.zeros((n_lines, n_channels), np.uint16),
        first_line_index=10,
        encoder_counts=np.arange(n_lines, dtype=np.int64),
        timestamps_ns=np.arange(n_lines, dtype=np.int64),
    )


def test_line_block_valid_has_half_open_range() -> None:
    block = _block()
    assert (block.n_lines, block.n_channels, block.end_line_index) == (4, 8, 14)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("high", np.zeros((4, 8), np.float32), "dtype uint16"),
        ("low", np.zeros((4, 7), np.uint16), "same shape"),
        ("encoder_counts", np.zeros(3, np.int64), "one entry per line"),
        ("timestamps_ns", np.zeros(4, np.int32), "dtype int64"),
    ],
)
def test_line_block_bad_arrays_rejected(field: str, value: np.ndarray, message: str) -> None:
    kwargs = {
        "high": np.zeros((4, 8), np.uint16),
        "low": np.zeros((4, 8), np.uint16),
        "first_line_index": 0,
        "encoder_counts": np.zeros(4, np.int64),
        "timestamps_ns": np.zeros(4, np.int64),
    }
    kwargs[field] = value
    with pytest.raises((TypeError, ValueError), match=message):
        LineBlock(**kwargs)  # type: ignore[arg-type]


def _scan(**overrides: object) -> ParcelScan:
    kwargs: dict[str, object] = {
        "parcel_id": "L1-1",
        "line_id": "L1",
        "high": np.ones((20, 8), np.uint16),
        "low": np.ones((20, 8), np.uint16),
        "first_line_index": 0,
        "entry_encoder_counts": 0,
        "belt_position_mm": 0.0,
        "entered_at_ns": 0,
        "line_pitch_mm": 1.6,
        "channel_pitch_mm": 1.6,
    }
    kwargs.update(overrides)
    return ParcelScan(**kwargs)  # type: ignore[arg-type]


def test_parcel_scan_completeness_reflects_missing_lines() -> None:
    assert _scan().complete
    partial = _scan(missing_lines=(LineRange(3, 7),))
    assert not partial.complete and partial.n_missing_lines == 4
    assert not _scan(truncated=True).complete
    assert _scan().length_mm == pytest.approx(32.0)


def test_parcel_scan_missing_range_outside_scan_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        _scan(missing_lines=(LineRange(15, 25),))


def test_detections_filter_by_mask_keeps_parallel_arrays() -> None:
    det = Detections(
        xyxy=np.array([[0, 0, 5, 5], [1, 1, 4, 9], [2, 2, 3, 3]], np.float32),
        scores=np.array([0.9, 0.2, 0.6], np.float32),
        class_ids=np.array([0, 1, 0], np.int32),
        class_names=("knife", "gun"),
        model_id="m@1",
    )
    kept = det.filter(det.scores > 0.5)
    assert len(kept) == 2
    assert kept.labels() == ("knife", "knife")
    assert kept.xyxy[1].tolist() == [2, 2, 3, 3]
    assert det.max_score_by_class() == pytest.approx({"knife": 0.9, "gun": 0.2})


def test_detections_class_id_out_of_range_rejected() -> None:
    with pytest.raises(ValueError, match="class_names"):
        Detections(
            xyxy=np.zeros((1, 4), np.float32),
            scores=np.zeros(1, np.float32),
            class_ids=np.array([3], np.int32),
            class_names=("knife",),
            model_id="m@1",
        )


def test_decision_fail_closed_never_clears() -> None:
    with pytest.raises(ValueError, match="never clear"):
        Decision("p", Route.CLEAR, (), "v1", 0, fail_closed=True)
    d = Decision.fail_closed_reject("p", ReasonCode.DEADLINE_MISSED, "late by 30 ms", "v1", 5)
    assert d.route is Route.REJECT and d.route.diverts and d.fail_closed


def test_decision_divert_needs_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        Decision("p", Route.REJECT, (), "v1", 0)
    Decision("p", Route.REVIEW, (Reason(ReasonCode.SENDER_RISK, "listed", 0.5),), "v1", 0)


def test_personal_data_masked_and_kept_out_of_repr() -> None:
    pii = PersonalData(
        sender_name="张三丰", sender_phone="138-1234-5678", recipient_address="广东省深圳市南山区科技园1号"
    )
    masked = pii.masked()
    assert masked.sender_name == "张**"
    assert masked.sender_phone == "*******5678"
    assert masked.recipient_address.startswith("广东省深圳市") and "科技园" not in masked.recipient_address
    waybill = Waybill(tracking_no="SF1", carrier_code="SF", pii=pii)
    assert "张三丰" not in repr(waybill) and "5678" not in repr(pii)


def test_taxonomy_has_pidray_classes_and_stable_ids() -> None:
    from smartscreen.domain.taxonomy import CLASS_NAMES, PROHIBITED_CLASS_NAMES, class_id

    pidray = {
        "baton",
        "pliers",
        "hammer",
        "powerbank",
        "scissors",
        "wrench",
        "gun",
        "bullet",
        "sprayer",
        "handcuffs",
        "knife",
        "lighter",
    }
    assert pidray <= set(CLASS_NAMES) and len(CLASS_NAMES) == 15
    assert class_id("baton") == 0 and class_id("firecracker") == 14
    assert {"gun", "knife", "firecracker"} <= PROHIBITED_CLASS_NAMES
    with pytest.raises(KeyError, match="unknown class"):
        class_id("banana")
