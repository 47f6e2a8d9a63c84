"""The belt plan: one shared script for the scanner and I/O-board emulators. Pure numpy.

Belt coordinate ``x`` (mm) is the belt position that crosses the X-ray scan plane at scan
line ``k = x / line_pitch_mm``. Scan line ``k`` is acquired at ``t0 + k / line_rate`` and
latches encoder count ``round(k * counts_per_line)``. The entry photo-eye is
``eye_to_scan_mm`` upstream of the scan plane, the barcode reader ``barcode_to_eye_mm``
upstream of the eye and the reject gate ``scan_to_gate_mm`` downstream of the scan plane,
so every event's encoder count (and hence time) follows from the parcel's place on the belt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


def _check_row(name: str, row: npt.NDArray[np.uint16], n_channels: int) -> None:
    ok_shape = row.ndim in (1, 2) and row.shape[-1] == n_channels and row.shape[0] > 0
    if not isinstance(row, np.ndarray) or row.dtype != np.uint16 or not ok_shape:
        raise ValueError(
            f"{name} must be uint16 of shape ({n_channels},) or (lines, {n_channels}), got {row.dtype} {row.shape}"
        )


def _rows(ref: npt.NDArray[np.uint16], first: int, n: int) -> npt.NDArray[np.uint16]:
    """Rows ``first .. first+n`` of a reference: one row repeated, or a block of lines cycled."""
    if ref.ndim == 1:
        return np.broadcast_to(ref, (n, ref.shape[0])).copy()
    idx = np.arange(first, first + n) % ref.shape[0]
    return np.ascontiguousarray(ref[idx])


@dataclass(frozen=True, slots=True)
class PlannedParcel:
    """One parcel on the belt: its raw scan (full detector width) and what the barcode reader sees.

    ``gap_before_mm`` is the empty belt between the previous parcel (or the lead-in) and this
    one; 0 means the parcels touch. ``barcodes`` empty = no-read, several = multi-read.
    """

    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    barcodes: tuple[str, ...] = ()
    gap_before_mm: float = 300.0

    def __post_init__(self) -> None:
        for name, a in (("high", self.high), ("low", self.low)):
            if not isinstance(a, np.ndarray) or a.dtype != np.uint16 or a.ndim != 2 or 0 in a.shape:
                raise ValueError(f"parcel {name} must be a non-empty 2-D uint16 array (lines, channels)")
        if self.high.shape != self.low.shape:
            raise ValueError(f"parcel high {self.high.shape} and low {self.low.shape} differ")
        if self.gap_before_mm < 0:
            raise ValueError(f"gap_before_mm must be >= 0, got {self.gap_before_mm}")

    @property
    def n_lines(self) -> int:
        return int(self.high.shape[0])


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """Something the I/O board reports, at a belt encoder count."""

    encoder_counts: int
    kind: str  # "barcode", "eye_blocked", "eye_clear", "gate"
    parcel_index: int  # index into the plan's parcels (first parcel of a touching group for eye/gate)
    group: int  # photo-eye group: touching parcels share one group (one board parcel_seq)
    barcodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BeltPlan:
    """Parcels, gaps, belt and tunnel geometry, and the calibration references the scanner sends.

    ``air_*``/``dark_*`` are one row per channel ``(N,)`` or a block of recorded lines ``(m, N)``
    that is cycled (so air lines in the gaps carry real noise).
    """

    parcels: tuple[PlannedParcel, ...]
    air_high: npt.NDArray[np.uint16]
    air_low: npt.NDArray[np.uint16]
    dark_high: npt.NDArray[np.uint16]
    dark_low: npt.NDArray[np.uint16]
    belt_speed_mm_s: float = 2500.0
    line_pitch_mm: float = 1.6
    encoder_counts_per_mm: float = 10.0
    eye_to_scan_mm: float = 200.0
    barcode_to_eye_mm: float = 300.0
    scan_to_gate_mm: float = 1500.0
    trailing_gap_mm: float = 300.0
    n_reference_lines: int = 32
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_ch = int(self.air_high.shape[-1]) if isinstance(self.air_high, np.ndarray) and self.air_high.ndim else -1
        for name, row in (
            ("air_high", self.air_high),
            ("air_low", self.air_low),
            ("dark_high", self.dark_high),
            ("dark_low", self.dark_low),
        ):
            _check_row(name, row, n_ch)
        for i, p in enumerate(self.parcels):
            if p.high.shape[1] != n_ch:
                raise ValueError(f"parcel {i} has {p.high.shape[1]} channels, the references have {n_ch}")
        if self.belt_speed_mm_s <= 0 or self.line_pitch_mm <= 0 or self.encoder_counts_per_mm <= 0:
            raise ValueError("belt speed, line pitch and encoder resolution must be positive")
        if min(self.eye_to_scan_mm, self.barcode_to_eye_mm, self.scan_to_gate_mm, self.trailing_gap_mm) < 0:
            raise ValueError("distances must be >= 0")
        starts: list[int] = []
        k = self.lead_in_lines
        for p in self.parcels:
            k += round(p.gap_before_mm / self.line_pitch_mm)
            starts.append(k)
            k += p.n_lines
        object.__setattr__(self, "_starts", tuple(starts))

    # ---- geometry ------------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return int(self.air_high.shape[-1])

    @property
    def line_rate_hz(self) -> float:
        return self.belt_speed_mm_s / self.line_pitch_mm

    @property
    def counts_per_line(self) -> float:
        return self.encoder_counts_per_mm * self.line_pitch_mm

    @property
    def lead_in_lines(self) -> int:
        """Air lines before the first parcel's gap, so the first barcode read happens after t0."""
        return int(np.ceil((self.eye_to_scan_mm + self.barcode_to_eye_mm) / self.line_pitch_mm)) + 1

    @property
    def parcel_line_ranges(self) -> tuple[tuple[int, int], ...]:
        """``[start, stop)`` scan-line range of each parcel."""
        return tuple((s, s + p.n_lines) for s, p in zip(self._starts, self.parcels, strict=True))

    @property
    def n_lines(self) -> int:
        """Scan lines in the whole plan (lead-in, parcels, gaps and the trailing gap)."""
        end = self._starts[-1] + self.parcels[-1].n_lines if self.parcels else self.lead_in_lines
        return end + round(self.trailing_gap_mm / self.line_pitch_mm)

    def encoder_at_line(self, k: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.round(k.astype(np.float64) * self.counts_per_line).astype(np.int64)

    def line_offset_ns(self, k: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Time of scan line ``k`` after t0, in ns."""
        return np.round(k.astype(np.float64) * (1e9 / self.line_rate_hz)).astype(np.int64)

    def counts_offset_ns(self, counts: int) -> int:
        """Time after t0 at which the encoder reads ``counts``."""
        return round(counts / (self.encoder_counts_per_mm * self.belt_speed_mm_s) * 1e9)

    def lines(self, first: int, n: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
        """High and low rows of scan lines ``[first, first + n)``: parcel lines, air elsewhere."""
        high = _rows(self.air_high, first, n)
        low = _rows(self.air_low, first, n)
        for (s, e), p in zip(self.parcel_line_ranges, self.parcels, strict=True):
            a, b = max(s, first), min(e, first + n)
            if a < b:
                high[a - first : b - first] = p.high[a - s : b - s]
                low[a - first : b - first] = p.low[a - s : b - s]
        return high, low

    def reference(self, dark: bool, n: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
        h, lo = (self.dark_high, self.dark_low) if dark else (self.air_high, self.air_low)
        return _rows(h, 0, n), _rows(lo, 0, n)

    def events(self) -> list[PlannedEvent]:
        """Every I/O-board event of the plan, sorted by encoder count."""
        cpl = self.counts_per_line
        d_eye = round(self.eye_to_scan_mm * self.encoder_counts_per_mm)
        d_bar = round(self.barcode_to_eye_mm * self.encoder_counts_per_mm)
        d_gate = round(self.scan_to_gate_mm * self.encoder_counts_per_mm)
        ranges = self.parcel_line_ranges
        groups: list[int] = []
        for i, (s, _) in enumerate(ranges):
            touching = i > 0 and ranges[i - 1][1] >= s
            groups.append(groups[-1] if touching else (groups[-1] + 1 if groups else 0))
        out: list[PlannedEvent] = []
        for i, (s, e) in enumerate(ranges):
            s_counts, e_counts = round(s * cpl), round(e * cpl)
            g = groups[i]
            out.append(PlannedEvent(s_counts - d_eye - d_bar, "barcode", i, g, self.parcels[i].barcodes))
            if i == 0 or groups[i - 1] != g:
                out.append(PlannedEvent(s_counts - d_eye, "eye_blocked", i, g))
                out.append(PlannedEvent(s_counts + d_gate, "gate", i, g))
            if i == len(ranges) - 1 or groups[i + 1] != g:
                out.append(PlannedEvent(e_counts - d_eye, "eye_clear", i, g))
        return sorted(out, key=lambda ev: (ev.encoder_counts, ev.kind != "eye_clear"))


def uniform_references(
    n_channels: int, air: int = 60000, dark: int = 200, low_air: int | None = None
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16], npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """Flat air and dark reference rows (air_high, air_low, dark_high, dark_low) for tests and demos."""
    full = np.full(n_channels, air, dtype=np.uint16)
    full_low = np.full(n_channels, air if low_air is None else low_air, dtype=np.uint16)
    off = np.full(n_channels, dark, dtype=np.uint16)
    return full, full_low, off, off.copy()
