"""Line blocks: the unit of dual-energy line-scan data that crosses the wire.

Pure numpy; no I/O. ``smartscreen.domain`` re-exports :class:`LineBlock` so the
whole system speaks one type for streamed lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt


def _check_array(name: str, array: object, dtype: type[np.generic], ndim: int) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")


class LineKind(StrEnum):
    """What a block of lines shows: the belt (parcels and air between them), or a calibration reference."""

    SCAN = "scan"
    DARK = "dark"  # X-rays off: detector offset per channel
    AIR = "air"  # X-rays on, empty beam: open-beam (gain) reference per channel


@dataclass(frozen=True, slots=True)
class LineBlock:
    """A block of consecutive detector lines, both energies, as read off the wire.

    Attributes:
        high: high-energy counts, shape ``(n_lines, n_channels)``, uint16.
        low: low-energy counts, same shape and dtype as ``high``.
        first_line_index: scanner line counter of row 0 (monotonic, never wraps
            inside the process: the receiver unwraps the wire's 32-bit counter).
        encoder_counts: belt encoder count latched at each line, shape ``(n_lines,)``, int64.
        timestamps_ns: scanner timestamp of each line in nanoseconds, shape ``(n_lines,)``, int64.
        kind: belt lines, or a dark / air calibration reference.
    """

    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    first_line_index: int
    encoder_counts: npt.NDArray[np.int64]
    timestamps_ns: npt.NDArray[np.int64]
    kind: LineKind = LineKind.SCAN

    def __post_init__(self) -> None:
        _check_array("high", self.high, np.uint16, 2)
        _check_array("low", self.low, np.uint16, 2)
        if self.high.shape != self.low.shape:
            raise ValueError(f"high {self.high.shape} and low {self.low.shape} must have the same shape")
        n_lines = self.high.shape[0]
        if n_lines == 0:
            raise ValueError("a line block holds at least one line")
        _check_array("encoder_counts", self.encoder_counts, np.int64, 1)
        _check_array("timestamps_ns", self.timestamps_ns, np.int64, 1)
        if self.encoder_counts.shape[0] != n_lines or self.timestamps_ns.shape[0] != n_lines:
            raise ValueError(
                f"encoder_counts {self.encoder_counts.shape} and timestamps_ns {self.timestamps_ns.shape} "
                f"must have one entry per line ({n_lines})"
            )
        if self.first_line_index < 0:
            raise ValueError(f"first_line_index must be >= 0, got {self.first_line_index}")

    @property
    def n_lines(self) -> int:
        return int(self.high.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.high.shape[1])

    @property
    def end_line_index(self) -> int:
        """One past the last line index (half-open range)."""
        return self.first_line_index + self.n_lines
