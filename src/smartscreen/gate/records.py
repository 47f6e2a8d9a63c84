"""The decision record written to a PLC (``serial-and-plc.md`` 4.9) and its Modbus register map. Pure.

Holding registers (0-based addresses as the client sends them):

=====  ================================================================
0, 1   parcel key (u32, high word first): the tracking slot of the parcel
2      record sequence (u16, incremented per record, wraps)
3      decision: 0 none, 1 clear/release, 2 reject, 3 manual review
4      reason: index of the first reason code (0 = none)
5      CRC-16/CCITT-FALSE over registers 0-4 (big-endian bytes)
10     bridge heartbeat counter (u16, written every heartbeat period)
20     PLC: sequence of the last record it judged
21     PLC: status of that record (see :class:`AckStatus`)
22     PLC heartbeat counter (u16, incremented by the PLC every period)
23     PLC mode: 0 normal, 1 all-reject (bridge heartbeat lost)
=====  ================================================================

The whole record goes in one FC16 write so the PLC never sees a torn record.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

from smartscreen.domain.decision import ReasonCode, Route

RECORD_ADDRESS = 0
RECORD_REGISTERS = 6
BRIDGE_HEARTBEAT_ADDRESS = 10
STATUS_ADDRESS = 20
STATUS_REGISTERS = 4
REGISTER_SPACE = 32

ROUTE_CODES: dict[Route, int] = {Route.CLEAR: 1, Route.REJECT: 2, Route.REVIEW: 3}
CODE_ROUTES: dict[int, Route] = {v: k for k, v in ROUTE_CODES.items()}
REASON_INDEX: dict[ReasonCode, int] = {code: i + 1 for i, code in enumerate(ReasonCode)}


class AckStatus(IntEnum):
    NONE = 0
    ACCEPTED = 1
    BAD_CRC = 2
    STALE_SEQUENCE = 3
    TOO_LATE = 4
    BAD_DECISION = 5


class PlcMode(IntEnum):
    NORMAL = 0
    ALL_REJECT = 1


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); check value 0x29B1 for b"123456789"."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    parcel_key: int
    sequence: int
    route: Route
    reason: ReasonCode | None

    def registers(self) -> list[int]:
        words = [
            (self.parcel_key >> 16) & 0xFFFF,
            self.parcel_key & 0xFFFF,
            self.sequence & 0xFFFF,
            ROUTE_CODES[self.route],
            REASON_INDEX[self.reason] if self.reason is not None else 0,
        ]
        return [*words, crc16_ccitt_false(struct.pack(">5H", *words))]


def parse_record(registers: list[int]) -> tuple[DecisionRecord | None, AckStatus]:
    """Decode and check a record written by the bridge; returns the record or why it is refused."""
    if len(registers) != RECORD_REGISTERS:
        return None, AckStatus.BAD_CRC
    words = [r & 0xFFFF for r in registers]
    if crc16_ccitt_false(struct.pack(">5H", *words[:5])) != words[5]:
        return None, AckStatus.BAD_CRC
    route = CODE_ROUTES.get(words[3])
    if route is None:
        return None, AckStatus.BAD_DECISION
    reasons = list(ReasonCode)
    reason = reasons[words[4] - 1] if 0 < words[4] <= len(reasons) else None
    return DecisionRecord((words[0] << 16) | words[1], words[2], route, reason), AckStatus.ACCEPTED


def parcel_key(parcel_id: str) -> int:
    """The PLC tracking slot of a parcel: the board's parcel sequence (the number after the last '-')."""
    tail = parcel_id.rsplit("-", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"parcel id {parcel_id!r} does not end in a parcel sequence number")
    return int(tail) & 0xFFFFFFFF


def sequence_newer(candidate: int, last: int) -> bool:
    """True when 16-bit sequence ``candidate`` comes after ``last`` (serial-number arithmetic)."""
    return 0 < ((candidate - last) & 0xFFFF) < 0x8000
