"""Tungsten-anode tube spectrum (Kramers' law with filtration and K lines) and sandwich-detector response.

The spectral model of one scanner reduces to four weight vectors over an energy grid: the
mean and second moment of the deposited energy per incident photon in the low-energy (front)
and high-energy (rear) layers, times the photons per pixel per line. For any ray with
transmission ``T(E)``, the expected signal is ``T @ w_mean`` and the quantum variance
``T @ w_var`` (compound Poisson, reference doc 5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from smartscreen.imaging.materials import mass_attenuation
from smartscreen.imaging.scanner import REFERENCE_FLUENCE_PER_MAS_CM2, ScannerParams

FloatArray = npt.NDArray[np.float64]

ENERGY_BIN_KEV = 4.0
# bin centres 11, 13, ..., 199 keV
ENERGY_GRID_KEV: FloatArray = np.arange(10.0 + ENERGY_BIN_KEV / 2, 200.0, ENERGY_BIN_KEV)

# W K lines (keV, relative intensity), reference doc 3.2
_W_K_LINES = ((57.98, 0.29), (59.32, 0.50), (66.95, 0.06), (67.24, 0.11), (69.03, 0.04))
_W_K_EDGE_KEV = 69.525
_W_K_LINE_FRACTION = 0.03  # share of the photon output in K lines when kVp is above the K edge
_RHO = {"W": 19.3, "Al": 2.70, "Cu": 8.96, "CsI": 4.51, "Si": 2.33, "pvc": 1.38}


@dataclass(frozen=True, slots=True)
class SpectralModel:
    """Energy grid and per-channel detector weights of one scanner configuration.

    Attributes:
        energies_kev: bin centres actually used (bins with no signal are dropped).
        photons: incident photons per pixel per line per bin, after tube and tunnel filtration.
        mean_low, mean_high: deposited energy (keV) per pixel per line for unit transmission, per bin.
        var_low, var_high: quantum variance contribution (keV^2) per bin.
    """

    energies_kev: FloatArray
    photons: FloatArray
    mean_low: FloatArray
    mean_high: FloatArray
    var_low: FloatArray
    var_high: FloatArray

    @property
    def air_signal(self) -> tuple[float, float]:
        return float(self.mean_low.sum()), float(self.mean_high.sum())

    @property
    def air_snr(self) -> tuple[float, float]:
        """Quantum-limited SNR of one pixel in air (low, high)."""
        return (
            float(self.mean_low.sum() / np.sqrt(self.var_low.sum())),
            float(self.mean_high.sum() / np.sqrt(self.var_high.sum())),
        )

    def weights(self) -> npt.NDArray[np.float32]:
        """``(n_energies, 4)`` float32: mean_low, mean_high, var_low, var_high, each normalised to air = 1."""
        columns = [self.mean_low, self.mean_high, self.var_low, self.var_high]
        return np.stack([c / c.sum() for c in columns], axis=1).astype(np.float32)


def tube_spectrum(kvp: float, filtration_al_mm: float, anode_self_filtration_um: float = 6.0) -> FloatArray:
    """Photons / cm^2 / mAs at 1 m per ``ENERGY_BIN_KEV`` bin on :data:`ENERGY_GRID_KEV` (Kramers + filtration)."""
    e = ENERGY_GRID_KEV
    continuum = np.where(e < kvp, np.clip(kvp - e, 0.0, None) / e, 0.0) * ENERGY_BIN_KEV
    if kvp > _W_K_EDGE_KEV:
        total = continuum.sum()
        # K-line yield grows with overvoltage; a few % of the output at 140-160 kVp
        share = _W_K_LINE_FRACTION * min(1.0, (kvp - _W_K_EDGE_KEV) / 90.0)
        for energy, weight in _W_K_LINES:
            index = int(np.argmin(np.abs(e - energy)))
            continuum[index] += total * share * weight
    self_filter = np.exp(-mass_attenuation("W", e) * _RHO["W"] * anode_self_filtration_um * 1e-4)
    added = np.exp(-mass_attenuation("Al", e) * _RHO["Al"] * filtration_al_mm * 0.1)
    return continuum * self_filter * added * _fluence_scale()


@lru_cache(maxsize=1)
def _fluence_scale() -> float:
    # normalise Kramers so that 160 kVp behind 2 mm Al gives the SpekPy reference fluence
    e = ENERGY_GRID_KEV
    kvp = 160.0
    raw = np.where(e < kvp, (kvp - e) / e, 0.0) * ENERGY_BIN_KEV
    raw = raw * np.exp(-mass_attenuation("W", e) * _RHO["W"] * 6.0e-4)
    raw = raw * np.exp(-mass_attenuation("Al", e) * _RHO["Al"] * 0.2)
    return float(REFERENCE_FLUENCE_PER_MAS_CM2 / raw.sum())


def _absorbed_fraction(formula: str, rho: float, thickness_mm: float, e: FloatArray) -> FloatArray:
    """Fraction of photons depositing energy in a scintillator layer (photo-fraction of interactions)."""
    mu_total = mass_attenuation(formula, e)
    mu_photo = mass_attenuation(formula, e, kind="photo")
    return (1.0 - np.exp(-mu_total * rho * thickness_mm * 0.1)) * (mu_photo / mu_total)


@lru_cache(maxsize=64)
def _spectral_model_cached(key: tuple[float, ...], photons_scale: float) -> SpectralModel:
    kvp, filt_al, self_filt, le_csi, cu, he_csi, belt_pvc, cover_al = key
    e = ENERGY_GRID_KEV
    phi = tube_spectrum(kvp, filt_al, self_filt)
    tunnel = np.exp(
        -mass_attenuation("pvc", e) * _RHO["pvc"] * belt_pvc * 0.1
        - mass_attenuation("Al", e) * _RHO["Al"] * cover_al * 0.1
    )
    photons = phi * tunnel * photons_scale
    d_low = _absorbed_fraction("CsI", _RHO["CsI"], le_csi, e)
    front_transmission = np.exp(
        -mass_attenuation("CsI", e) * _RHO["CsI"] * le_csi * 0.1
        - mass_attenuation("Si", e) * _RHO["Si"] * 0.03  # 0.3 mm photodiode substrate
        - mass_attenuation("Cu", e) * _RHO["Cu"] * cu * 0.1
    )
    d_high = front_transmission * _absorbed_fraction("CsI", _RHO["CsI"], he_csi, e)
    mean_low = photons * d_low * e
    mean_high = photons * d_high * e
    var_low = photons * d_low * e * e
    var_high = photons * d_high * e * e
    # keep the bins below the tube voltage: a prefix of the grid, so attenuation tables stay cacheable
    keep = slice(0, int(np.searchsorted(e, kvp)))
    return SpectralModel(
        energies_kev=e[keep],
        photons=photons[keep],
        mean_low=mean_low[keep],
        mean_high=mean_high[keep],
        var_low=var_low[keep],
        var_high=var_high[keep],
    )


def spectral_model(params: ScannerParams) -> SpectralModel:
    """The spectral model of a scanner; photon counts per pixel per line follow current, dose, pitch and speed."""
    pixel_area_cm2 = params.channel_pitch_mm * params.line_pitch_mm * 0.01
    photons_scale = (
        params.tube_current_ma
        * params.dose_factor
        * params.line_period_s
        * pixel_area_cm2
        / (params.source_detector_m**2)
    )
    return _spectral_model_cached(params.spectral_key(), round(photons_scale, 12))
