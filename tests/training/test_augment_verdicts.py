"""X-ray augmentation keeps hue (material) and boxes; operator verdicts become labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartscreen.domain.events import OperatorVerdict, ParcelScanned, VerdictBox, VerdictKind
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.training.augment import XrayAugmentSettings, XrayPhotometric
from smartscreen.training.readers import read_yolo
from smartscreen.training.verdicts import ReviewedCase, export_verdicts, latest_verdicts
from tests.training.fixtures import BLUE, ORANGE


def _hue_deg(bgr: tuple[int, int, int]) -> float:
    pixel = np.array([[bgr]], np.uint8)
    return float(cv2.cvtColor(pixel, cv2.COLOR_BGR2HSV_FULL)[0, 0, 0]) * 360 / 256


def test_photometric_augmentation_keeps_hue_and_labels() -> None:
    image = np.full((120, 160, 3), 245, np.uint8)
    image[20:70, 20:70] = BLUE
    image[60:110, 90:150] = ORANGE
    always = XrayAugmentSettings(p_blur=1, p_resample=1, p_noise=1, p_line_noise=1, p_jpeg=1, p_tone=1, p_background=1)
    aug = XrayPhotometric(always)
    np.random.seed(0)
    changed = 0
    for _ in range(20):
        labels = {"img": image.copy(), "cls": np.array([[6]]), "marker": "kept"}
        out = aug(labels)
        result = out["img"]
        assert isinstance(result, np.ndarray) and result.shape == image.shape and result.dtype == np.uint8
        assert out["marker"] == "kept" and out["cls"].tolist() == [[6]]
        changed += int(np.abs(result.astype(int) - image.astype(int)).mean() > 1)
        for (y, x), colour in (((45, 45), BLUE), ((85, 120), ORANGE)):
            patch = result[y - 5 : y + 5, x - 5 : x + 5].reshape(-1, 3).mean(axis=0)
            got = _hue_deg(tuple(int(v + 0.5) for v in patch))
            want = _hue_deg(colour)
            assert min(abs(got - want), 360 - abs(got - want)) < 12, (got, want)
    assert changed >= 15  # it really augments
    np.random.seed(1)
    a = aug.apply(image)
    np.random.seed(1)
    assert np.array_equal(a, aug.apply(image))  # deterministic for a seed
    assert np.array_equal(XrayPhotometric(XrayAugmentSettings.off()).apply(image), image)


def _png(path: Path, shape: tuple[int, int] = (80, 100)) -> Path:
    cv2.imwrite(str(path), np.full((*shape, 3), 240, np.uint8))
    return path


def test_verdicts_to_yolo(tmp_path: Path) -> None:
    img = {n: _png(tmp_path / f"{n}.png") for n in ("p1", "p2", "p3", "p4")}
    cases = [
        ReviewedCase("p1", img["p1"], OperatorVerdict("p1", 10, "op1", VerdictKind.FALSE_ALARM)),
        # corrected later: threat confirmed with a box (the later verdict wins)
        ReviewedCase(
            "p1",
            img["p1"],
            OperatorVerdict("p1", 20, "op2", VerdictKind.THREAT_CONFIRMED, (VerdictBox("knife", 10, 20, 60, 40),)),
        ),
        ReviewedCase("p2", img["p2"], OperatorVerdict("p2", 10, "op1", VerdictKind.FALSE_ALARM)),
        ReviewedCase("p3", img["p3"], OperatorVerdict("p3", 10, "op1", VerdictKind.NEEDS_OPENING)),
        ReviewedCase("p4", img["p4"], OperatorVerdict("p4", 10, "op1", VerdictKind.THREAT_CONFIRMED)),
    ]
    assert [c.verdict.at_ns for c in latest_verdicts(cases)] == [20, 10, 10, 10]
    report = export_verdicts(cases, tmp_path / "out", val_fraction=0.0)
    assert report.images_written == {"train": 2} and report.negatives_written == 1
    assert report.boxes_per_class == {"knife": 1}
    skipped = {i.file.split(" ")[0]: i.problem for i in report.issues}
    assert "needs opening" in skipped["p3"] and "without a box" in skipped["p4"]
    result = read_yolo(tmp_path / "out" / "data.yaml")
    knife = next(i for i in result.images if i.boxes)
    box = knife.boxes[0]
    assert box.class_name == "knife"
    assert (box.x1_px * 100, box.y1_px * 80, box.x2_px * 100, box.y2_px * 80) == pytest.approx(
        (10, 20, 60, 40), abs=1e-3
    )


def test_verdicts_from_a_real_sqlite_journal(tmp_path: Path) -> None:
    from smartscreen.journal.images import FsImageStore
    from smartscreen.journal.journal import Journal
    from smartscreen.training.journal_source import reviewed_cases_from_journal

    store = FsImageStore(tmp_path / "images")
    ok, png = cv2.imencode(".png", np.full((60, 90, 3), 235, np.uint8))
    assert ok
    digest = store.put(png.tobytes())
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal.open(url)
    for pid, kind, vboxes in (
        ("P1", VerdictKind.THREAT_CONFIRMED, (VerdictBox("gun", 5, 5, 40, 30),)),
        ("P2", VerdictKind.FALSE_ALARM, ()),
    ):
        journal.append(ParcelScanned(pid, "L1", 1, (60, 90), True, 0, False, "0" * 64, digest))
        journal.append(OperatorVerdict(pid, 2, "op", kind, vboxes))
    journal.close()
    cases = reviewed_cases_from_journal(url, tmp_path / "images", tmp_path / "scratch")
    assert sorted((c.parcel_id, c.verdict.kind) for c in cases) == [
        ("P1", VerdictKind.THREAT_CONFIRMED),
        ("P2", VerdictKind.FALSE_ALARM),
    ]
    report = export_verdicts(cases, tmp_path / "ds", val_fraction=0.0)
    assert report.negatives_written == 1 and report.boxes_per_class == {"gun": 1}
    assert CLASS_NAMES.index("gun") == int(
        (next((tmp_path / "ds" / "labels" / "train").glob("*P1*.txt"))).read_text().split()[0]
    )


def test_train_refuses_a_learning_rate_the_auto_optimizer_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartscreen.cli import main

    rc = main(["train", "--data", str(tmp_path / "data.yaml"), "--lr0", "0.001"])
    assert rc == 2
    assert "--lr0 needs --optimizer" in capsys.readouterr().err
