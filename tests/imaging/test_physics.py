"""Attenuation data, spectrum and detector model against the reference tables."""

from __future__ import annotations

import numpy as np
import pytest

from smartscreen.imaging import MaterialLut, ScannerParams
from smartscreen.imaging.forward import SpectralForward
from smartscreen.imaging.materials import MATERIALS, mass_attenuation
from smartscreen.imaging.spectrum import spectral_model

# (material, keV, mu/rho cm^2/g) from dual-energy-physics.md table 2.1 (xraydb 4.5.8, NIST XCOM for water)
REFERENCE = [
    ("water", 60, 0.2059),
    ("iron", 60, 1.205),
    ("water", 20, 0.8098),
    ("water", 150, 0.1505),
    ("iron", 100, 0.3717),
    ("aluminium", 60, 0.2778),
    ("copper", 60, 1.593),
    ("polyethylene", 80, 0.1823),
    ("pvc", 50, 0.4559),
    ("glass", 90, 0.1841),
    ("lead", 90, 7.255),  # above the K edge
    ("lead", 80, 2.420),  # below it
]


@pytest.mark.parametrize(("material", "kev", "expected"), REFERENCE)
def test_mass_attenuation_matches_reference_table_to_1_percent(material: str, kev: float, expected: float) -> None:
    value = float(mass_attenuation(material, [kev])[0])
    assert value == pytest.approx(expected, rel=0.01)


def test_effective_z_of_library_materials() -> None:
    assert MATERIALS["water"].zeff == pytest.approx(7.42, abs=0.05)
    assert MATERIALS["polyethylene"].zeff == pytest.approx(5.44, abs=0.05)
    assert MATERIALS["pvc"].zeff == pytest.approx(13.86, abs=0.05)


def test_sandwich_detector_effective_energies_and_noise_are_in_the_reference_range() -> None:
    model = spectral_model(ScannerParams(kvp=160, tube_current_ma=1.0, belt_speed_mm_s=200.0))
    w = model.weights()
    mean_low = float((w[:, 0] * model.energies_kev).sum())
    mean_high = float((w[:, 1] * model.energies_kev).sum())
    assert 58.0 < mean_low < 64.0  # reference 60.6 keV
    assert 92.0 < mean_high < 99.0  # reference 95.3 keV
    snr_low, snr_high = model.air_snr
    assert 200 < snr_low < 290  # reference 244 at 1 mA, 8 ms, 1.6 mm
    assert 120 < snr_high < 180  # reference 148


def test_polychromatic_r_falls_with_thickness_beam_hardening() -> None:
    forward = SpectralForward(ScannerParams())
    x = np.array([0.5, 2.0, 10.0, 20.0], np.float32)
    a_low, a_high = forward.attenuation({"aluminium": x})
    r = a_low / a_high
    assert np.all(np.diff(r) < 0)
    assert r[0] == pytest.approx(1.92, abs=0.1)  # reference table 2.3
    assert r[-1] == pytest.approx(1.365, abs=0.05)


@pytest.mark.parametrize(
    ("material", "zeff"), [("polyethylene", 5.44), ("water", 7.42), ("aluminium", 13.0), ("iron", 26.0), ("pvc", 13.86)]
)
def test_noise_free_lut_recovers_zeff_over_thickness(material: str, zeff: float) -> None:
    params = ScannerParams()
    lut = MaterialLut.for_spectrum(params)
    a_low, a_high = SpectralForward(params).attenuation({material: np.array([0.5, 1, 2, 5, 10], np.float32)})
    z, areal = lut.lookup(a_high, a_low)
    assert np.all(np.abs(z - zeff) < 0.8), z
    assert np.allclose(areal, [0.5, 1, 2, 5, 10], rtol=0.12), areal


def test_lead_k_edge_makes_thin_lead_read_low_z() -> None:
    """Pitfall 4 of the reference: Pb's K edge between LE and HE makes it look light, not blue."""
    params = ScannerParams()
    a_low, a_high = SpectralForward(params).attenuation({"lead": np.array([1.0], np.float32)})
    z, _ = MaterialLut.for_spectrum(params).lookup(a_high, a_low)
    assert z[0] < 14
