"""Material discrimination on simulated step wedges, overlap, robustness to detector defects."""

from __future__ import annotations

import numpy as np
import pytest

from smartscreen.domain.render import MaterialClass
from smartscreen.imaging import ImagingChain, ParcelSimulator, ScannerParams

from .conftest import Wedge, expose

EXPECTED = {"polyethylene": MaterialClass.ORGANIC, "aluminium": MaterialClass.INORGANIC, "iron": MaterialClass.METAL}


def _wedge_accuracy(params: ScannerParams, seed: int) -> dict[str, float]:
    sim = ParcelSimulator(params, np.random.default_rng(seed))
    chain = ImagingChain(params, sim.calibration())
    out = {}
    for material, expected in EXPECTED.items():
        wedge = Wedge(params, material)
        rendered = chain.process(*expose(sim, {material: wedge.map}))
        hits = total = 0
        for step in range(len(wedge.steps)):
            classes = wedge.interior(rendered.material, step)
            hits += int((classes == expected).sum())
            total += classes.size
        out[material] = hits / total
    return out


def test_step_wedges_land_in_the_right_class_at_default_noise(default_scanner) -> None:  # type: ignore[no-untyped-def]
    params, sim, _, chain = default_scanner
    for material, expected in EXPECTED.items():
        wedge = Wedge(params, material)
        rendered = chain.process(*expose(sim, {material: wedge.map}))
        classes = np.concatenate([wedge.interior(rendered.material, s).ravel() for s in range(len(wedge.steps))])
        accuracy = float((classes == expected).mean())
        assert accuracy >= 0.95, f"{material}: {accuracy:.3f} of interior pixels in class {expected.name}"
        zeff = np.median(wedge.interior(rendered.zeff, 2))
        assert zeff == pytest.approx({"polyethylene": 5.4, "aluminium": 13.0, "iron": 26.0}[material], abs=1.5)


def test_background_is_air_and_thick_steel_is_impenetrable(default_scanner) -> None:  # type: ignore[no-untyped-def]
    params, sim, _, chain = default_scanner
    m = np.zeros((48, params.channels), np.float32)
    m[24:, 100:900] = 40.0  # 5 cm of iron
    rendered = chain.process(*expose(sim, {"iron": m}))
    assert (rendered.material[2:20, :] == MaterialClass.BACKGROUND).mean() > 0.99
    assert (rendered.material[30:44, 110:890] == MaterialClass.IMPENETRABLE).mean() > 0.99
    assert np.all(rendered.rgb[30:44, 110:890] < 40)  # black
    assert np.all(rendered.rgb[2:20, :] > 240)  # white background


def test_thin_organic_under_steel_reads_mixed(default_scanner) -> None:  # type: ignore[no-untyped-def]
    """Superposition physics: organic behind 2 mm steel reads inorganic/mixed (reference 7.3: TNT under steel Z~16)."""
    params, sim, _, chain = default_scanner
    organic = np.zeros((40, params.channels), np.float32)
    steel = np.zeros_like(organic)
    organic[:, 100:900] = 5.0  # 5 g/cm^2 of polyethylene (~5 cm)
    steel[:, 500:900] = 0.2 * 7.87  # 2 mm steel over half of it
    rendered = chain.process(*expose(sim, {"polyethylene": organic, "steel": steel}))
    alone = rendered.material[8:32, 120:480]
    covered = rendered.material[8:32, 520:880]
    assert (alone == MaterialClass.ORGANIC).mean() > 0.95
    assert (covered == MaterialClass.INORGANIC).mean() > 0.9
    assert 10.0 < float(np.median(rendered.zeff[8:32, 520:880])) < 18.0


def test_calibration_is_robust_to_bad_pixels_and_gain_non_uniformity() -> None:
    clean = ScannerParams(bad_pixel_fraction=0.0, gain_spread=0.0, dark_spread=0.0)
    defective = ScannerParams(bad_pixel_fraction=0.01, gain_spread=0.05)
    acc_clean = _wedge_accuracy(clean, seed=7)
    acc_bad = _wedge_accuracy(defective, seed=7)
    for material in EXPECTED:
        drop = acc_clean[material] - acc_bad[material]
        assert drop < 0.02, f"{material}: accuracy {acc_clean[material]:.3f} -> {acc_bad[material]:.3f}"


def test_bad_pixels_are_detected_from_references() -> None:
    params = ScannerParams(bad_pixel_fraction=0.01, gain_spread=0.05)
    sim = ParcelSimulator(params, np.random.default_rng(3))
    calibration = sim.calibration()
    truth_high = sim.detector.pattern.bad_high
    found = calibration.bad_high
    assert truth_high.sum() >= 5
    assert found[truth_high].mean() >= 0.9  # defective channels are flagged
    assert found[~truth_high].mean() < 0.01  # good ones are not


def test_filled_bad_channels_leave_no_stripes(default_scanner) -> None:  # type: ignore[no-untyped-def]
    params = ScannerParams(bad_pixel_fraction=0.01)
    sim = ParcelSimulator(params, np.random.default_rng(11))
    chain = ImagingChain(params, sim.calibration())
    m = np.zeros((64, params.channels), np.float32)
    m[:, :] = 3.0
    rendered = chain.process(*expose(sim, {"water": m}))
    column_means = rendered.attenuation_high.mean(axis=0)
    assert np.abs(column_means - np.median(column_means)).max() < 0.05
