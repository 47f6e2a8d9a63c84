"""Parcel scans: the assembled dual-energy image of one parcel."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from firmware_bridge.lines import LineBlock, LineKind

__all__ = ["LineBlock", "LineKind", "LineRange", "ParcelScan"]


@dataclass(frozen=True, slots=True)
class LineRange:
    """Half-open range ``[start, stop)`` of line indices relative to the first line of a scan."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError(f"line range must satisfy 0 <= start < stop, got [{self.start}, {self.stop})")

    @property
    def n_lines(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class ParcelScan:
    """One parcel's dual-energy raw image, rows = lines along the belt, columns = detector channels.

    Lines that never arrived are listed in ``missing_lines`` and hold zeros in
    ``high``/``low``; they are never interpolated. A scan whose parcel left the
    tunnel before its trailing edge was seen, or whose lines stopped, has
    ``truncated`` set.

    Attributes:
        parcel_id: unique id assigned at tunnel entry (``<line_id>-<sequence>``).
        line_id: the screening line that produced it.
        high: high-energy counts, shape ``(n_lines, n_channels)``, uint16.
        low: low-energy counts, same shape and dtype.
        first_line_index: scanner line index of row 0.
        entry_encoder_counts: belt encoder count when the leading edge crossed the entry photo-eye.
        belt_position_mm: belt travel (from encoder) at the leading edge, at the scan plane.
        entered_at_ns: wall-clock time of tunnel entry, ns since the Unix epoch.
        line_pitch_mm: belt travel per line.
        channel_pitch_mm: detector channel pitch.
        missing_lines: ranges of rows that never arrived.
        truncated: the parcel's end was not observed (stream stopped, parcel too long).
    """

    parcel_id: str
    line_id: str
    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    first_line_index: int
    entry_encoder_counts: int
    belt_position_mm: float
    entered_at_ns: int
    line_pitch_mm: float
    channel_pitch_mm: float
    missing_lines: tuple[LineRange, ...] = field(default=())
    truncated: bool = False

    def __post_init__(self) -> None:
        if not self.parcel_id:
            raise ValueError("parcel_id must not be empty")
        for name, array in (("high", self.high), ("low", self.low)):
            if not isinstance(array, np.ndarray) or array.dtype != np.uint16 or array.ndim != 2:
                raise TypeError(f"{name} must be a 2-D uint16 numpy array (n_lines, n_channels)")
        if self.high.shape != self.low.shape:
            raise ValueError(f"high {self.high.shape} and low {self.low.shape} must have the same shape")
        if self.high.shape[0] == 0 or self.high.shape[1] == 0:
            raise ValueError(f"a parcel scan needs at least one line and one channel, got {self.high.shape}")
        if self.line_pitch_mm <= 0 or self.channel_pitch_mm <= 0:
            raise ValueError("line_pitch_mm and channel_pitch_mm must be positive")
        for r in self.missing_lines:
            if r.stop > self.high.shape[0]:
                raise ValueError(
                    f"missing range [{r.start}, {r.stop}) lies outside the scan's {self.high.shape[0]} lines"
                )

    @property
    def shape_hw(self) -> tuple[int, int]:
        return (int(self.high.shape[0]), int(self.high.shape[1]))

    @property
    def n_missing_lines(self) -> int:
        return sum(r.n_lines for r in self.missing_lines)

    @property
    def complete(self) -> bool:
        """True when every line arrived and both edges of the parcel were seen."""
        return not self.missing_lines and not self.truncated

    @property
    def length_mm(self) -> float:
        return self.shape_hw[0] * self.line_pitch_mm
