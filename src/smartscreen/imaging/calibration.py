"""Dark/air (offset/gain) calibration, bad-pixel detection and fill, log attenuation.

The same code serves simulated and real scanner data: it only sees raw uint16 counts and the
per-channel dark and air references (reference doc 5.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from smartscreen.errors import CalibrationError, ImagingError

F32 = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

MAX_TRANSMISSION = 1.2  # clip of T = (S - D) / (A - D)
MIN_AIR_SPAN_ADU = 64.0  # air - dark below this everywhere means no usable air reference


def detect_bad_pixels(
    dark: F32, air: F32, full_scale_adu: int, dark_noise: F32 | None = None, mad_factor: float = 6.0
) -> BoolArray:
    """Flag defective channels from the references (reference doc 5.1 rule 4).

    A channel is bad if its air-minus-dark span deviates from the median by more than
    ``mad_factor`` MADs, if the air reference is saturated (hot), if the span is below 20 % of
    the median (dead or weak) or, when the dark lines' temporal noise is given, if that noise is
    above 5x its median (noisy).
    """
    span = air - dark
    median = float(np.median(span))
    mad = float(np.median(np.abs(span - median))) * 1.4826 + 1e-6
    bad = np.abs(span - median) > mad_factor * max(mad, 0.005 * abs(median))
    bad |= air >= 0.98 * full_scale_adu
    bad |= span < 0.2 * median
    if dark_noise is not None:
        noise_median = float(np.median(dark_noise)) + 1e-6
        bad |= dark_noise > 5.0 * noise_median
    return np.asarray(bad, dtype=bool)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-channel calibration references of one scanner (offset and flat field) and its bad-pixel map.

    All arrays are ``(n_channels,)``; references are float32 ADU.
    """

    dark_high: F32
    dark_low: F32
    air_high: F32
    air_low: F32
    bad_high: BoolArray
    bad_low: BoolArray
    full_scale_adu: int = 65535
    _fill: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], F32]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        n = self.dark_high.shape
        for name in ("dark_high", "dark_low", "air_high", "air_low", "bad_high", "bad_low"):
            array = getattr(self, name)
            if array.ndim != 1 or array.shape != n:
                raise CalibrationError(
                    f"calibration reference {name} must be 1-D of length {n[0]}, got shape {array.shape}"
                )
        for name in ("dark_high", "dark_low", "air_high", "air_low"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise CalibrationError(f"calibration reference {name} contains NaN or infinite values")
        for tag in ("high", "low"):
            span = getattr(self, f"air_{tag}") - getattr(self, f"dark_{tag}")
            good = ~getattr(self, f"bad_{tag}")
            if not good.any():
                raise CalibrationError(
                    f"every {tag}-energy channel is flagged bad: the air/dark references are unusable"
                )
            if float(np.median(span[good])) < MIN_AIR_SPAN_ADU:
                raise CalibrationError(
                    f"{tag}-energy air reference is not above the dark reference (median span "
                    f"{float(np.median(span[good])):.1f} ADU): record air lines with the X-rays on and the tunnel empty"
                )
        for tag in ("high", "low"):
            self._fill[tag] = _fill_plan(getattr(self, f"bad_{tag}"))

    @property
    def n_channels(self) -> int:
        return int(self.dark_high.shape[0])

    @classmethod
    def from_references(
        cls,
        dark_high: F32,
        dark_low: F32,
        air_high: F32,
        air_low: F32,
        full_scale_adu: int = 65535,
        bad_high: BoolArray | None = None,
        bad_low: BoolArray | None = None,
    ) -> Calibration:
        """Calibration from per-channel mean references; bad pixels are detected and OR-ed with any given map."""
        refs = [np.asarray(a, dtype=np.float32) for a in (dark_high, dark_low, air_high, air_low)]
        for name, array in zip(("dark_high", "dark_low", "air_high", "air_low"), refs, strict=True):
            if array.ndim != 1:
                raise CalibrationError(
                    f"calibration reference {name} must be 1-D (n_channels,), got shape {array.shape}"
                )
        d_h, d_l, a_h, a_l = refs
        for name, array in zip(("dark_low", "air_high", "air_low"), refs[1:], strict=True):
            if array.shape != d_h.shape:
                raise CalibrationError(
                    f"calibration reference {name} must be 1-D of length {d_h.shape[0]} like dark_high, got shape {array.shape}"
                )
        det_h = detect_bad_pixels(d_h, a_h, full_scale_adu)
        det_l = detect_bad_pixels(d_l, a_l, full_scale_adu)
        for name, given in (("bad_high", bad_high), ("bad_low", bad_low)):
            if given is not None and np.shape(given) != d_h.shape:
                raise CalibrationError(f"bad-pixel map {name} must have shape {d_h.shape}, got {np.shape(given)}")
        if bad_high is not None:
            det_h = det_h | np.asarray(bad_high, dtype=bool)
        if bad_low is not None:
            det_l = det_l | np.asarray(bad_low, dtype=bool)
        return cls(d_h, d_l, a_h, a_l, det_h, det_l, full_scale_adu)

    @classmethod
    def from_reference_lines(
        cls,
        dark_high: npt.NDArray[np.uint16],
        dark_low: npt.NDArray[np.uint16],
        air_high: npt.NDArray[np.uint16],
        air_low: npt.NDArray[np.uint16],
        full_scale_adu: int = 65535,
    ) -> Calibration:
        """Calibration from raw reference lines ``(n_lines, n_channels)``: X-rays off and empty tunnel.

        Uses the temporal noise of the dark lines to flag noisy channels as well.
        """
        for name, lines in (
            ("dark_high", dark_high),
            ("dark_low", dark_low),
            ("air_high", air_high),
            ("air_low", air_low),
        ):
            if lines.ndim != 2 or lines.shape[0] < 2:
                raise CalibrationError(f"{name} reference lines must be (n_lines >= 2, n_channels), got {lines.shape}")
        means = [
            np.asarray(a, dtype=np.float64).mean(axis=0).astype(np.float32)
            for a in (dark_high, dark_low, air_high, air_low)
        ]
        noise_h = np.asarray(dark_high, dtype=np.float64).std(axis=0).astype(np.float32)
        noise_l = np.asarray(dark_low, dtype=np.float64).std(axis=0).astype(np.float32)
        bad_h = detect_bad_pixels(means[0], means[2], full_scale_adu, noise_h)
        bad_l = detect_bad_pixels(means[1], means[3], full_scale_adu, noise_l)
        return cls(means[0], means[1], means[2], means[3], bad_h, bad_l, full_scale_adu)


def _fill_plan(bad: BoolArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], F32]:
    """Indices and weights to replace bad channels by linear interpolation between the nearest good ones."""
    n = bad.size
    bad_idx = np.flatnonzero(bad)
    good_idx = np.flatnonzero(~bad)
    if bad_idx.size == 0 or good_idx.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    pos = np.searchsorted(good_idx, bad_idx)
    left = good_idx[np.clip(pos - 1, 0, good_idx.size - 1)]
    right = good_idx[np.clip(pos, 0, good_idx.size - 1)]
    left = np.where(pos == 0, right, left)
    right = np.where(pos >= good_idx.size, left, right)
    span = (right - left).astype(np.float32)
    weight = np.where(span > 0, (bad_idx - left) / np.maximum(span, 1), 0.0).astype(np.float32)
    del n
    return bad_idx.astype(np.intp), left.astype(np.intp), right.astype(np.intp), weight


@dataclass(frozen=True, slots=True)
class CalibratedScan:
    """Log attenuations ``a = -ln T`` of both channels, bad channels filled, float32 ``(n_lines, n_channels)``."""

    attenuation_high: F32
    attenuation_low: F32


def validate_raw(high: npt.NDArray[np.generic], low: npt.NDArray[np.generic], calibration: Calibration | None) -> None:
    """Raise a clear :class:`ImagingError` / :class:`CalibrationError` if a raw scan cannot be calibrated."""
    for name, array in (("high", high), ("low", low)):
        if not isinstance(array, np.ndarray):
            raise ImagingError(f"raw scan '{name}' must be a numpy array, got {type(array).__name__}")
        if array.dtype != np.uint16:
            raise ImagingError(f"raw scan '{name}' must be uint16 counts, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ImagingError(f"raw scan '{name}' must be 2-D (n_lines, n_channels), got shape {array.shape}")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise ImagingError(f"raw scan '{name}' is empty (shape {array.shape})")
    if high.shape != low.shape:
        raise ImagingError(f"raw scan 'high' {high.shape} and 'low' {low.shape} must have the same shape")
    if calibration is None:
        raise CalibrationError(
            "no calibration: dark and air references (dark_high, dark_low, air_high, air_low) are required"
        )
    if calibration.n_channels != high.shape[1]:
        raise CalibrationError(
            f"calibration has {calibration.n_channels} channels but the scan has {high.shape[1]}: "
            "the references belong to another detector or geometry"
        )
    ceiling = calibration.full_scale_adu
    for name, array in (("high", high), ("low", low)):
        saturated = np.flatnonzero(array.min(axis=1) >= ceiling)
        if saturated.size:
            shown = ", ".join(str(int(i)) for i in saturated[:8])
            more = f" and {saturated.size - 8} more" if saturated.size > 8 else ""
            raise ImagingError(
                f"raw scan '{name}' has {saturated.size} fully saturated line(s) (every channel at {ceiling} ADU): "
                f"lines {shown}{more}; check detector gain, air level and ADC"
            )


def _attenuation(
    counts: npt.NDArray[np.uint16],
    dark: F32,
    air: F32,
    fill: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], F32],
) -> F32:
    span = np.maximum(air - dark, np.float32(1.0)).astype(np.float32)
    floor = np.float32(1e-5) * span  # T floor: a <= ~11.5
    x = counts.astype(np.float32)
    x -= dark
    np.maximum(x, floor, out=x)
    np.log(x, out=x)
    a = np.log(span).astype(np.float32) - x
    np.maximum(a, np.float32(-np.log(MAX_TRANSMISSION)), out=a)
    bad_idx, left, right, weight = fill
    if bad_idx.size:
        a[:, bad_idx] = a[:, left] * (1.0 - weight) + a[:, right] * weight
    return np.asarray(a, dtype=np.float32)


def calibrate(
    high: npt.NDArray[np.uint16], low: npt.NDArray[np.uint16], calibration: Calibration | None
) -> CalibratedScan:
    """Offset and flat-field correction, bad-channel fill and log attenuation of a raw scan.

    Raises:
        ImagingError: wrong dtype, shape, or fully saturated lines.
        CalibrationError: missing calibration or references that do not fit the scan.
    """
    validate_raw(high, low, calibration)
    assert calibration is not None
    return CalibratedScan(
        attenuation_high=_attenuation(high, calibration.dark_high, calibration.air_high, calibration._fill["high"]),
        attenuation_low=_attenuation(low, calibration.dark_low, calibration.air_low, calibration._fill["low"]),
    )
