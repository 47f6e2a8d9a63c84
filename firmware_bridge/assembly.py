"""Parcel assembly: streamed line blocks + entry photo-eye edges -> one dual-energy scan per parcel. Pure.

The entry photo-eye sits ``eye_to_scan_mm`` upstream of the X-ray scan plane. A parcel whose
leading edge blocks the eye at encoder count ``e_in`` and whose trailing edge clears it at
``e_out`` occupies the scan lines whose latched encoder count lies in
``[e_in + D, e_out + D)`` with ``D`` the eye-to-scan distance in counts. Lines are matched by
their own encoder counts and line indices (carried on the wire), so lost lines are known
exactly: they are zero-filled and listed in ``missing_lines``, never interpolated.

Touching parcels (the eye never clears between them) come out as one scan: the photo-eye
cannot separate them, and the tracking stage decides what to do with an over-long parcel.
A parcel longer than ``max_parcel_lines`` is cut there and marked ``truncated``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from firmware_bridge.lines import LineBlock, LineKind

_SLACK_LINES = 256


@dataclass(frozen=True, slots=True)
class AssemblerConfig:
    """Geometry of the tunnel as the assembler needs it.

    Attributes:
        encoder_counts_per_mm: belt encoder resolution.
        line_pitch_mm: belt travel per detector line.
        eye_to_scan_mm: distance from the entry photo-eye to the scan plane (eye upstream).
        margin_lines: extra lines taken before and after the photo-eye window.
        max_parcel_lines: a parcel longer than this is cut and marked truncated.
        buffer_lines: how many lines to keep for parcels whose edges arrive late.
    """

    encoder_counts_per_mm: float
    line_pitch_mm: float
    eye_to_scan_mm: float
    margin_lines: int = 0
    max_parcel_lines: int = 4096
    buffer_lines: int = 8192

    def __post_init__(self) -> None:
        if self.encoder_counts_per_mm <= 0 or self.line_pitch_mm <= 0:
            raise ValueError("encoder_counts_per_mm and line_pitch_mm must be positive")
        if self.eye_to_scan_mm < 0 or self.margin_lines < 0:
            raise ValueError("eye_to_scan_mm and margin_lines must be >= 0")
        if self.max_parcel_lines < 1 or self.buffer_lines < self.max_parcel_lines:
            raise ValueError("need max_parcel_lines >= 1 and buffer_lines >= max_parcel_lines")

    @property
    def counts_per_line(self) -> float:
        return self.encoder_counts_per_mm * self.line_pitch_mm

    @property
    def eye_to_scan_counts(self) -> int:
        return round(self.eye_to_scan_mm * self.encoder_counts_per_mm)


@dataclass(frozen=True, slots=True)
class AssembledParcel:
    """One parcel's dual-energy scan as assembled from the stream.

    ``missing_lines`` are half-open ``(start, stop)`` row ranges (relative to row 0) that never
    arrived; their rows hold zeros. ``truncated``: the parcel's end was not observed (stream
    stopped, or longer than ``max_parcel_lines``).
    """

    parcel_seq: int
    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    first_line_index: int
    entry_encoder_counts: int
    exit_encoder_counts: int | None
    entered_at_ns: int
    belt_position_mm: float
    line_pitch_mm: float
    missing_lines: tuple[tuple[int, int], ...] = ()
    truncated: bool = False

    @property
    def n_lines(self) -> int:
        return int(self.high.shape[0])

    @property
    def n_missing_lines(self) -> int:
        return sum(b - a for a, b in self.missing_lines)

    @property
    def complete(self) -> bool:
        return not self.missing_lines and not self.truncated


@dataclass(slots=True)
class _Window:
    parcel_seq: int
    entry_counts: int
    entered_at_ns: int
    exit_counts: int | None = None


@dataclass(slots=True)
class AssemblerStats:
    parcels: int = 0
    parcels_incomplete: int = 0
    parcels_truncated: int = 0
    lines_missing: int = 0
    unmatched_exit_edges: int = 0
    repeated_entry_edges: int = 0
    reference_blocks_ignored: int = 0


@dataclass(slots=True)
class ParcelAssembler:
    """Feed line blocks and entry photo-eye edges (any interleaving, blocks in line order); get parcels."""

    config: AssemblerConfig
    stats: AssemblerStats = field(default_factory=AssemblerStats)
    _blocks: deque[LineBlock] = field(default_factory=deque)
    _windows: deque[_Window] = field(default_factory=deque)
    _anchor: tuple[int, int] | None = None  # (line index, encoder counts) of the newest line
    _n_channels: int | None = None
    _auto_seq: int = 0

    # ---- input -------------------------------------------------------------------------------
    def feed_block(self, block: LineBlock) -> list[AssembledParcel]:
        """Add a block of lines; returns parcels completed by it. Reference (dark/air) blocks are ignored."""
        if block.kind != LineKind.SCAN:
            self.stats.reference_blocks_ignored += 1
            return []
        if self._n_channels is None:
            self._n_channels = block.n_channels
        elif block.n_channels != self._n_channels:
            raise ValueError(f"block has {block.n_channels} channels, the stream had {self._n_channels}")
        if self._anchor is not None and block.first_line_index <= self._anchor[0]:
            raise ValueError(
                f"line blocks must arrive in line order: block starts at {block.first_line_index}, "
                f"line {self._anchor[0]} already seen"
            )
        self._blocks.append(block)
        self._anchor = (block.end_line_index - 1, int(block.encoder_counts[-1]))
        out = self._emit_ready()
        self._evict()
        return out

    def feed_edge(
        self, blocked: bool, encoder_counts: int, at_ns: int, parcel_seq: int | None = None
    ) -> list[AssembledParcel]:
        """An entry photo-eye edge: ``blocked`` True = leading edge (a parcel enters), False = trailing edge."""
        if blocked:
            if self._windows and self._windows[-1].exit_counts is None:
                self.stats.repeated_entry_edges += 1  # still blocked: a glitch, keep the open window
                return []
            if parcel_seq is None:
                self._auto_seq += 1
                parcel_seq = self._auto_seq
            self._windows.append(_Window(parcel_seq, encoder_counts, at_ns))
            return []
        if not self._windows or self._windows[-1].exit_counts is not None:
            self.stats.unmatched_exit_edges += 1
            return []
        self._windows[-1].exit_counts = encoder_counts
        return self._emit_ready()

    def flush(self) -> list[AssembledParcel]:
        """End of stream: emit every open parcel from the lines there are (open ones marked truncated)."""
        out: list[AssembledParcel] = []
        while self._windows:
            w = self._windows.popleft()
            if self._anchor is None:
                continue
            out.append(self._build(w, force_truncated=w.exit_counts is None))
        return out

    @property
    def open_parcels(self) -> int:
        return len(self._windows)

    # ---- internals -----------------------------------------------------------------------------
    def _line_for_counts(self, counts: int) -> int:
        """Index of the first line whose encoder count is >= ``counts`` (from the newest line)."""
        assert self._anchor is not None
        idx, enc = self._anchor
        return idx + math.ceil((counts - enc) / self.config.counts_per_line - 1e-9)

    def _window_lines(self, w: _Window) -> tuple[int, int, bool]:
        d = self.config.eye_to_scan_counts
        start = max(0, self._line_for_counts(w.entry_counts + d) - self.config.margin_lines)
        truncated = False
        if w.exit_counts is None:
            stop = start + self.config.max_parcel_lines
            truncated = True
        else:
            stop = self._line_for_counts(w.exit_counts + d) + self.config.margin_lines
            if stop - start > self.config.max_parcel_lines:
                stop = start + self.config.max_parcel_lines
                truncated = True
        return start, max(stop, start + 1), truncated

    def _emit_ready(self) -> list[AssembledParcel]:
        out: list[AssembledParcel] = []
        while self._windows and self._anchor is not None:
            w = self._windows[0]
            _, stop, truncated = self._window_lines(w)
            newest = self._anchor[0]
            if w.exit_counts is None and not truncated:
                break
            if newest < stop - 1:
                break
            self._windows.popleft()
            out.append(self._build(w, force_truncated=False))
        return out

    def _build(self, w: _Window, force_truncated: bool) -> AssembledParcel:
        start, stop, truncated = self._window_lines(w)
        newest = self._anchor[0] if self._anchor is not None else start - 1
        if force_truncated:
            truncated = True
            if w.exit_counts is None:
                stop = max(start + 1, min(stop, newest + 1))
        n_ch = self._n_channels or 1
        n = stop - start
        high = np.zeros((n, n_ch), dtype=np.uint16)
        low = np.zeros((n, n_ch), dtype=np.uint16)
        have = np.zeros(n, dtype=bool)
        for b in self._blocks:
            a0, a1 = max(start, b.first_line_index), min(stop, b.end_line_index)
            if a0 >= a1:
                continue
            high[a0 - start : a1 - start] = b.high[a0 - b.first_line_index : a1 - b.first_line_index]
            low[a0 - start : a1 - start] = b.low[a0 - b.first_line_index : a1 - b.first_line_index]
            have[a0 - start : a1 - start] = True
        missing = _false_runs(have)
        if w.exit_counts is None:
            truncated = True
        self.stats.parcels += 1
        if missing or truncated:
            self.stats.parcels_incomplete += 1
        if truncated:
            self.stats.parcels_truncated += 1
        self.stats.lines_missing += sum(b - a for a, b in missing)
        return AssembledParcel(
            parcel_seq=w.parcel_seq,
            high=high,
            low=low,
            first_line_index=start,
            entry_encoder_counts=w.entry_counts,
            exit_encoder_counts=w.exit_counts,
            entered_at_ns=w.entered_at_ns,
            belt_position_mm=(w.entry_counts + self.config.eye_to_scan_counts) / self.config.encoder_counts_per_mm,
            line_pitch_mm=self.config.line_pitch_mm,
            missing_lines=missing,
            truncated=truncated,
        )

    def _evict(self) -> None:
        if self._anchor is None:
            return
        newest = self._anchor[0]
        need_from = self._window_lines(self._windows[0])[0] if self._windows else newest
        # keep some slack for photo-eye edges that arrive after their lines (slow serial link)
        keep_from = max(newest - self.config.buffer_lines, min(need_from, newest - _SLACK_LINES))
        while self._blocks and self._blocks[0].end_line_index <= keep_from:
            self._blocks.popleft()


def _false_runs(have: npt.NDArray[np.bool_]) -> tuple[tuple[int, int], ...]:
    if bool(have.all()):
        return ()
    padded = np.concatenate([[True], have, [True]]).astype(np.int8)
    diff = np.diff(padded)
    starts = np.flatnonzero(diff == -1)
    stops = np.flatnonzero(diff == 1)
    return tuple((int(a), int(b)) for a, b in zip(starts, stops, strict=True))
