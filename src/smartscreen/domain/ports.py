"""Ports: the interfaces every adapter implements (typing.Protocol, structural).

Adapters live outside ``domain``; stages depend only on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from smartscreen.domain.detections import Detections
from smartscreen.domain.events import ParcelEvent
from smartscreen.domain.io import GateAck, GateCommand, IoEvent
from smartscreen.domain.render import RenderedScan
from smartscreen.domain.scan import LineBlock
from smartscreen.domain.waybill import Waybill


@runtime_checkable
class Clock(Protocol):
    """Time source; tests use a fake one that they advance by hand."""

    def monotonic_ns(self) -> int: ...

    def time_ns(self) -> int: ...


@runtime_checkable
class LineSource(Protocol):
    """Streams line blocks from one scanner (GigE Vision, emulator, replay)."""

    def read_block(self, timeout_s: float) -> LineBlock | None:
        """The next block, or None when none arrived within ``timeout_s``."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class IoLink(Protocol):
    """The scanner's I/O board: belt, encoder, photo-eyes, barcode reader, generator."""

    def poll_event(self, timeout_s: float) -> IoEvent | None: ...

    def link_alive(self) -> bool:
        """False once the board's heartbeat has been missing longer than its timeout."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Detector(Protocol):
    """Finds objects in rendered scans; one result per input, in input order."""

    @property
    def model_id(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def detect(self, scans: Sequence[RenderedScan]) -> list[Detections]: ...


@runtime_checkable
class WaybillLookup(Protocol):
    """Finds the waybill for a tracking number.

    Returns None when the number is unknown; raises ``WaybillServiceError`` when the
    service cannot answer (the caller fails closed).
    """

    def lookup(self, tracking_no: str) -> Waybill | None: ...


@runtime_checkable
class GateActuator(Protocol):
    """The sorter's reject gate (serial I/O board, Modbus PLC, emulator)."""

    def command(self, command: GateCommand, timeout_s: float) -> GateAck:
        """Send one command and wait for its acknowledgement; raises ``GateError``."""
        ...

    def link_alive(self) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class ReviewStore(Protocol):
    """The audit journal as stages and the review service see it: append-only events."""

    def append(self, event: ParcelEvent) -> int:
        """Durably record one event; returns its journal sequence number."""
        ...

    def events_for(self, parcel_id: str) -> list[ParcelEvent]: ...


@runtime_checkable
class ImageStore(Protocol):
    """Content-addressed blob storage for scans and renders."""

    def put(self, data: bytes) -> str:
        """Store bytes; returns their sha256 hex digest (idempotent)."""
        ...

    def get(self, sha256: str) -> bytes:
        """Raises KeyError for an unknown or malformed digest."""
        ...
