"""Associating upstream barcode reads with parcel scans by belt position (conveyor tracking).

The barcode reader stands ``barcode_to_scanner_mm`` upstream of the tunnel's entry photo-eye.
Belt travel is measured by the encoder, so a parcel whose leading edge crossed the entry eye at
encoder count ``E`` occupied the reader between belt positions ``E*k - d`` and ``E*k - d + L``
(``k`` mm per count, ``d`` the reader distance, ``L`` the parcel length). Reads inside that
interval, widened by ``window_mm`` on both sides, belong to the parcel.

Outcomes are explicit: MATCHED (one distinct code), NO_READ (none), MULTI_READ (several distinct
codes) and MISMATCH (the code, or a read inside the parcel's own extent, already belongs to another
parcel). Pure logic, no clock: the caller feeds reads and asks when a scan is assembled.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from smartscreen.domain.waybill import BarcodeMatch, BarcodeRead


@dataclass(frozen=True, slots=True)
class Association:
    """The outcome of associating reads with one parcel."""

    parcel_id: str
    outcome: BarcodeMatch
    tracking_no: str
    codes: tuple[str, ...]
    n_reads: int


@dataclass(slots=True)
class _PendingRead:
    read: BarcodeRead
    position_mm: float
    owner: str = ""


class BarcodeAssociator:
    """Holds recent reads and hands them to parcels by belt position.

    Args:
        barcode_to_scanner_mm: belt distance from the reader to the entry photo-eye.
        window_mm: tolerance on each side of the parcel's extent at the reader.
        mm_per_count: belt travel per encoder count.
        horizon_mm: reads further upstream than this behind the newest parcel are dropped
            as orphans (counted in :attr:`orphan_reads`).
        duplicate_window_mm: a code already associated with another parcel less than this far back on
            the belt makes a MISMATCH (one label on two parcels); further back it is a new pass of the same
            parcel (recirculation) or a reused label.
        recent_codes: how many associated codes are remembered to detect a label seen on two parcels.
    """

    def __init__(
        self,
        *,
        barcode_to_scanner_mm: float,
        window_mm: float,
        mm_per_count: float,
        horizon_mm: float = 20_000.0,
        duplicate_window_mm: float = 2_000.0,
        recent_codes: int = 4096,
    ) -> None:
        if window_mm <= 0 or mm_per_count <= 0 or barcode_to_scanner_mm < 0:
            raise ValueError("window_mm and mm_per_count must be > 0, barcode_to_scanner_mm >= 0")
        self._distance_mm = barcode_to_scanner_mm
        self._window_mm = window_mm
        self._mm_per_count = mm_per_count
        self._horizon_mm = horizon_mm
        self._reads: list[_PendingRead] = []
        self._recent: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._duplicate_window_mm = duplicate_window_mm
        self._recent_max = recent_codes
        self.orphan_reads = 0
        self.total_reads = 0

    def add_read(self, read: BarcodeRead) -> None:
        """Remember a read from the upstream scanner."""
        if not read.code:
            return
        self.total_reads += 1
        self._reads.append(_PendingRead(read, read.encoder_counts * self._mm_per_count))

    def associate(self, parcel_id: str, entry_encoder_counts: int, length_mm: float) -> Association:
        """Find the reads of the parcel that entered at ``entry_encoder_counts`` and is ``length_mm`` long."""
        start_mm = entry_encoder_counts * self._mm_per_count - self._distance_mm
        end_mm = start_mm + max(length_mm, 0.0)
        lo, hi = start_mm - self._window_mm, end_mm + self._window_mm
        mine = [p for p in self._reads if lo <= p.position_mm <= hi]
        taken_inside = [p for p in mine if p.owner and p.owner != parcel_id and start_mm <= p.position_mm <= end_mm]
        free = [p for p in mine if not p.owner]
        codes = tuple(sorted({p.read.code for p in free}))
        for p in free:
            p.owner = parcel_id
        self._expire(start_mm - self._horizon_mm)
        if taken_inside:
            outcome = BarcodeMatch.MISMATCH
        elif not codes:
            outcome = BarcodeMatch.NO_READ
        elif len(codes) > 1:
            outcome = BarcodeMatch.MULTI_READ
        elif self._is_duplicate(codes[0], parcel_id, start_mm):
            outcome = BarcodeMatch.MISMATCH  # the same label was just on another parcel
        else:
            outcome = BarcodeMatch.MATCHED
        tracking_no = codes[0] if outcome is BarcodeMatch.MATCHED else ""
        for code in codes:
            if code not in self._recent or not self._is_duplicate(code, parcel_id, start_mm):
                self._recent[code] = (parcel_id, start_mm)
                self._recent.move_to_end(code)
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)
        return Association(parcel_id, outcome, tracking_no, codes, len(free))

    def _is_duplicate(self, code: str, parcel_id: str, start_mm: float) -> bool:
        previous = self._recent.get(code)
        if previous is None or previous[0] == parcel_id:
            return False
        return abs(start_mm - previous[1]) < self._duplicate_window_mm

    def _expire(self, before_mm: float) -> None:
        keep: list[_PendingRead] = []
        for p in self._reads:
            if p.position_mm >= before_mm:
                keep.append(p)
            elif not p.owner:
                self.orphan_reads += 1
        self._reads = keep

    @property
    def pending(self) -> int:
        return sum(1 for p in self._reads if not p.owner)

    def expected_read_counts(self, entry_encoder_counts: int) -> int:
        """Encoder count at which the reader saw the leading edge of a parcel entering at ``entry_encoder_counts``."""
        return entry_encoder_counts - round(self._distance_mm / self._mm_per_count)
