"""Forward model: material areal densities -> expected detector signals -> raw uint16 counts.

Polychromatic Beer-Lambert over the scanner's spectral model (``spectrum.py``); the energy-
integrating sandwich detector; compound-Poisson quantum noise (Gaussian with exact mean and
variance), electronic read noise, detector PSF and LE/HE misregistration, line-to-line source
ripple, per-channel gain and offset non-uniformity, bad pixels (dead, hot, noisy) and ADC
quantisation/clipping. The fixed pattern belongs to a :class:`Detector` instance, as on a real
machine, so dark and air reference lines see the same pattern as the scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.imaging.materials import mass_attenuation
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.imaging.spectrum import SpectralModel, spectral_model

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ExpectedSignal:
    """Noise-free detector signals normalised to air = 1, with their relative quantum variances.

    ``var_*`` is the per-pixel quantum variance in the same normalised units.
    """

    low: F32
    high: F32
    var_low: F32
    var_high: F32


class SpectralForward:
    """Polychromatic transmission of areal-density maps through one scanner's spectrum and detector."""

    def __init__(self, params: ScannerParams) -> None:
        self.params = params
        self.model: SpectralModel = spectral_model(params)
        weights = self.model.weights()  # (E, 4), air-normalised
        snr_low, snr_high = self.model.air_snr
        # columns: low mean, high mean, low variance, high variance (variance in normalised signal units)
        weights[:, 2] /= snr_low**2
        weights[:, 3] /= snr_high**2
        self._weights = weights
        self._mu_cache: dict[str, F32] = {}

    def mu(self, material_name: str) -> F32:
        """(mu/rho) on the model's energy grid, float32."""
        cached = self._mu_cache.get(material_name)
        if cached is None:
            cached = mass_attenuation(material_name, self.model.energies_kev).astype(np.float32)
            self._mu_cache[material_name] = cached
        return cached

    def signal(self, areal_g_cm2: Mapping[str, F32]) -> ExpectedSignal:
        """Expected signals for maps of areal density (g/cm^2) per material, all the same shape.

        Pixels where every map is zero are air and skip the spectral integral.
        """
        if not areal_g_cm2:
            raise ValueError("signal() needs at least one material map")
        names = list(areal_g_cm2)
        shape = areal_g_cm2[names[0]].shape
        flats = [np.asarray(areal_g_cm2[n], dtype=np.float32).reshape(-1) for n in names]
        occupied_mask = flats[0] > 0.0
        for flat in flats[1:]:
            occupied_mask |= flat > 0.0
        occupied = np.flatnonzero(occupied_mask)
        out = np.empty((flats[0].size, 4), dtype=np.float32)
        out[:, 0:2] = 1.0
        out[:, 2] = float(self._weights[:, 2].sum())
        out[:, 3] = float(self._weights[:, 3].sum())
        if occupied.size:
            mu = np.stack([self.mu(n) for n in names], axis=0)  # (M, E)
            stack = np.stack([flat[occupied] for flat in flats], axis=1)  # (P, M), occupied pixels only
            chunk = 65536
            for start in range(0, occupied.size, chunk):
                part = stack[start : start + chunk]
                transmission = np.exp(-(part @ mu))  # (P, E)
                out[occupied[start : start + chunk]] = transmission @ self._weights
        return ExpectedSignal(
            low=out[:, 0].reshape(shape),
            high=out[:, 1].reshape(shape),
            var_low=out[:, 2].reshape(shape),
            var_high=out[:, 3].reshape(shape),
        )

    def attenuation(self, areal_g_cm2: Mapping[str, F32]) -> tuple[F32, F32]:
        """Noise-free ``(a_low, a_high)`` = ``-ln T`` for the given maps."""
        s = self.signal(areal_g_cm2)
        return (
            (-np.log(np.maximum(s.low, 1e-30))).astype(np.float32),
            (-np.log(np.maximum(s.high, 1e-30))).astype(np.float32),
        )


@dataclass(frozen=True, slots=True)
class FixedPattern:
    """Per-channel electronics of one detector: offsets (ADU), gains (relative), noise, bad pixels."""

    offset_low: F32
    offset_high: F32
    gain_low: F32
    gain_high: F32
    read_noise_low: F32
    read_noise_high: F32
    bad_low: BoolArray
    bad_high: BoolArray


def draw_fixed_pattern(params: ScannerParams, rng: np.random.Generator) -> FixedPattern:
    """Draw offsets, gains and defective pixels for a detector (clusters per 64-pixel card)."""
    n = params.channels
    out: dict[str, npt.NDArray[np.generic]] = {}
    for tag in ("low", "high"):
        offset = params.dark_offset_adu * (1.0 + params.dark_spread * rng.standard_normal(n))
        gain = 1.0 + params.gain_spread * np.clip(rng.standard_normal(n), -2.5, 2.5)
        # smooth card-to-card variation on top of pixel spread
        cards = max(1, n // 64)
        card_gain = 1.0 + 0.5 * params.gain_spread * rng.standard_normal(cards)
        gain *= np.repeat(card_gain, int(np.ceil(n / cards)))[:n]
        noise = np.full(n, params.read_noise_adu)
        bad = np.zeros(n, dtype=bool)
        n_bad = int(rng.binomial(n, params.bad_pixel_fraction)) if params.bad_pixel_fraction > 0 else 0
        if n_bad:
            picks = rng.choice(n, size=n_bad, replace=False)
            if n_bad >= 3 and rng.random() < 0.3:  # a small cluster on one card
                start = int(rng.integers(0, n - 3))
                picks[:3] = np.arange(start, start + 3)
            for i in picks:
                kind = rng.random()
                if kind < 0.5:  # dead or weak
                    gain[i] *= rng.uniform(0.0, 0.1)
                elif kind < 0.75:  # hot: saturates or sits far above
                    offset[i] = params.full_scale_adu * rng.uniform(0.9, 1.0)
                else:  # noisy
                    noise[i] = params.read_noise_adu * rng.uniform(40, 200) + 100
                bad[i] = True
        out[f"offset_{tag}"] = offset.astype(np.float32)
        out[f"gain_{tag}"] = gain.astype(np.float32)
        out[f"read_noise_{tag}"] = noise.astype(np.float32)
        out[f"bad_{tag}"] = bad
    return FixedPattern(
        offset_low=out["offset_low"].astype(np.float32),
        offset_high=out["offset_high"].astype(np.float32),
        gain_low=out["gain_low"].astype(np.float32),
        gain_high=out["gain_high"].astype(np.float32),
        read_noise_low=out["read_noise_low"].astype(np.float32),
        read_noise_high=out["read_noise_high"].astype(np.float32),
        bad_low=out["bad_low"].astype(bool),
        bad_high=out["bad_high"].astype(bool),
    )


def _blur_kernel(sigma_px: float, shift_px: float) -> F32:
    if sigma_px <= 0.05 and abs(shift_px) < 1e-3:
        return np.ones(1, dtype=np.float32)
    sigma = max(sigma_px, 0.05)
    half = max(1, int(np.ceil(3 * sigma + abs(shift_px))))
    x = np.arange(-half, half + 1, dtype=np.float64) - shift_px
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return np.asarray(k / k.sum(), dtype=np.float32)


class Detector:
    """A simulated line-scan detector: turns expected signals into raw uint16 counts.

    Args:
        params: scanner parameters.
        rng: generator used once for the fixed pattern (gains, offsets, bad pixels).
    """

    def __init__(self, params: ScannerParams, rng: np.random.Generator) -> None:
        self.params = params
        self.pattern = draw_fixed_pattern(params, rng)
        full = params.full_scale_adu
        # air level: counts above the offset in an empty tunnel
        self.air_span_adu = params.air_level_fraction * full - params.dark_offset_adu
        self._kernel_cross_high = _blur_kernel(params.psf_sigma_px, 0.0)
        self._kernel_cross_low = _blur_kernel(params.psf_sigma_px, params.misregistration_px)
        self._kernel_along = _blur_kernel(0.35 if params.psf_sigma_px > 0.05 else 0.0, 0.0)

    def _blur(self, image: F32, low: bool) -> F32:
        kx = self._kernel_cross_low if low else self._kernel_cross_high
        ky = self._kernel_along
        if kx.size == 1 and ky.size == 1:
            return image
        return np.asarray(cv2.sepFilter2D(image, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REPLICATE), dtype=np.float32)

    def _counts(self, mean: F32, var: F32, low: bool, rng: np.random.Generator, ripple: F32) -> U16:
        p = self.pattern
        offset = p.offset_low if low else p.offset_high
        gain = p.gain_low if low else p.gain_high
        read_noise = p.read_noise_low if low else p.read_noise_high
        scale = (gain * self.air_span_adu)[None, :]  # ADU per normalised unit, per channel
        # quantum (compound Poisson, Gaussian with exact variance) and read noise in one normal draw
        sigma = np.sqrt(np.maximum(var, 0.0) * (scale * scale) + (read_noise * read_noise)[None, :])
        counts = mean * scale
        counts += rng.standard_normal(mean.shape, dtype=np.float32) * sigma
        counts *= ripple[:, None]
        counts += offset[None, :]
        return np.clip(np.rint(counts), 0, self.params.full_scale_adu).astype(np.uint16)

    def _ripple(self, n_lines: int, rng: np.random.Generator) -> F32:
        return (1.0 + self.params.ripple * rng.standard_normal(n_lines)).astype(np.float32)

    def expose(self, signal: ExpectedSignal, rng: np.random.Generator) -> tuple[U16, U16]:
        """Raw ``(high, low)`` counts for full-width expected signals ``(n_lines, channels)``."""
        if signal.high.ndim != 2 or signal.high.shape[1] != self.params.channels:
            raise ValueError(f"expected signals of shape (n_lines, {self.params.channels}), got {signal.high.shape}")
        ripple = self._ripple(signal.high.shape[0], rng)
        low = self._blur(signal.low, low=True)
        high = self._blur(signal.high, low=False)
        var_low = self._blur(signal.var_low, low=True)
        var_high = self._blur(signal.var_high, low=False)
        counts_high = self._counts(high, var_high, False, rng, ripple)
        counts_low = self._counts(low, var_low, True, rng, ripple)
        return counts_high, counts_low

    def air_lines(self, n: int, rng: np.random.Generator, forward: SpectralForward) -> tuple[U16, U16]:
        """``n`` raw lines of an empty tunnel (beam on): ``(high, low)``."""
        shape = (n, self.params.channels)
        w = forward._weights
        signal = ExpectedSignal(
            low=np.ones(shape, np.float32),
            high=np.ones(shape, np.float32),
            var_low=np.full(shape, float(w[:, 2].sum()), np.float32),
            var_high=np.full(shape, float(w[:, 3].sum()), np.float32),
        )
        return self.expose(signal, rng)

    def dark_lines(self, n: int, rng: np.random.Generator) -> tuple[U16, U16]:
        """``n`` raw lines with the X-rays off: ``(high, low)``."""
        shape = (n, self.params.channels)
        zeros = np.zeros(shape, np.float32)
        ones = np.ones(n, np.float32)
        return self._counts(zeros, zeros, False, rng, ones), self._counts(zeros, zeros, True, rng, ones)
