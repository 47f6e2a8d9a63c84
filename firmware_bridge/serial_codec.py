"""Serial framing for the scanner's I/O board: COBS + header + CRC-16/CCITT-FALSE.

Pure functions and a resumable stream decoder; no I/O. The wire contract is in
``firmware_bridge/SPEC.md`` (section "Serial I/O link").

    wire frame = COBS(body) + 0x00
    body       = ver:u8 | type:u8 | seq:u8 | len:u16be | payload[len] | crc:u16be
    crc        = CRC-16/CCITT-FALSE over ver..payload (check value 0x29B1)
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from enum import IntEnum

PROTOCOL_VERSION = 1
HEADER_SIZE = 5
CRC_SIZE = 2
MIN_BODY_SIZE = HEADER_SIZE + CRC_SIZE
MAX_PAYLOAD_SIZE = 1024
# longest COBS-encoded frame the decoder accepts before declaring garbage (body + COBS overhead)
MAX_ENCODED_SIZE = MIN_BODY_SIZE + MAX_PAYLOAD_SIZE + (MIN_BODY_SIZE + MAX_PAYLOAD_SIZE) // 254 + 2


class FrameType(IntEnum):
    CMD = 0x01  # host -> board, reliable (ACKed)
    ACK = 0x02  # positive acknowledgement of ``seq``
    NAK = 0x03  # negative acknowledgement (seq 0 when the frame was unreadable)
    EVT = 0x04  # board -> host event, reliable (ACKed)
    HEARTBEAT = 0x05  # both ways, unacknowledged


class FrameError(ValueError):
    """A frame could not be decoded; ``reason`` is one of the counters of :class:`DecoderStats`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0): ``b"123456789"`` -> 0x29B1."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no 0x00 (the caller appends the delimiter)."""
    src = bytes(data)
    out = bytearray()
    code_index = 0
    out.append(0)
    code = 1
    for byte in src:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_index] = code
                code_index = len(out)
                out.append(0)
                code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`FrameError` (reason ``bad_cobs``) on malformed input."""
    src = bytes(data)
    out = bytearray()
    i = 0
    n = len(src)
    if n == 0:
        raise FrameError("bad_cobs", "empty COBS block")
    while i < n:
        code = src[i]
        if code == 0:
            raise FrameError("bad_cobs", f"zero byte inside a COBS block at offset {i}")
        end = i + code
        if end > n:
            raise FrameError("bad_cobs", f"COBS code {code} at offset {i} runs past the end ({n} bytes)")
        chunk = src[i + 1 : end]
        if 0 in chunk:
            raise FrameError("bad_cobs", "zero byte inside a COBS block")
        out += chunk
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded serial frame."""

    type: FrameType
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFF:
            raise ValueError(f"seq must fit in one byte, got {self.seq}")
        if len(self.payload) > MAX_PAYLOAD_SIZE:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD_SIZE}")


def encode_body(frame: Frame) -> bytes:
    head = struct.pack(">BBBH", frame.version, int(frame.type), frame.seq, len(frame.payload)) + frame.payload
    return head + struct.pack(">H", crc16_ccitt_false(head))


def encode_frame(frame: Frame) -> bytes:
    """The bytes to write on the wire, delimiter included."""
    return cobs_encode(encode_body(frame)) + b"\x00"


def decode_body(body: bytes) -> Frame:
    """Parse a de-stuffed body; raises :class:`FrameError` naming what is wrong."""
    if len(body) < MIN_BODY_SIZE:
        raise FrameError("bad_length", f"frame body of {len(body)} bytes is shorter than {MIN_BODY_SIZE}")
    version, ftype, seq, length = struct.unpack_from(">BBBH", body, 0)
    if HEADER_SIZE + length + CRC_SIZE != len(body):
        raise FrameError("bad_length", f"length field says {length} payload bytes, body holds {len(body) - 7}")
    (crc_wire,) = struct.unpack_from(">H", body, HEADER_SIZE + length)
    crc_calc = crc16_ccitt_false(body[: HEADER_SIZE + length])
    if crc_wire != crc_calc:
        raise FrameError("bad_crc", f"CRC mismatch: wire 0x{crc_wire:04X}, computed 0x{crc_calc:04X}")
    if version != PROTOCOL_VERSION:
        raise FrameError("bad_version", f"protocol version {version} is not supported (expected {PROTOCOL_VERSION})")
    try:
        frame_type = FrameType(ftype)
    except ValueError as e:
        raise FrameError("bad_type", f"unknown frame type 0x{ftype:02X}") from e
    return Frame(type=frame_type, seq=seq, payload=bytes(body[HEADER_SIZE : HEADER_SIZE + length]), version=version)


def decode_frame(wire: bytes) -> Frame:
    """Decode exactly one wire frame (with or without the trailing 0x00)."""
    data = wire[:-1] if wire.endswith(b"\x00") else wire
    return decode_body(cobs_decode(data))


@dataclass(slots=True)
class DecoderStats:
    frames_ok: int = 0
    bad_cobs: int = 0
    bad_crc: int = 0
    bad_length: int = 0
    bad_version: int = 0
    bad_type: int = 0
    oversize: int = 0
    bytes_skipped: int = 0

    @property
    def frames_bad(self) -> int:
        return self.bad_cobs + self.bad_crc + self.bad_length + self.bad_version + self.bad_type + self.oversize


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A delimited chunk that was not a valid frame (the link NAKs it)."""

    reason: str
    message: str
    n_bytes: int


@dataclass(slots=True)
class StreamDecoder:
    """Resumable decoder: feed arbitrary byte chunks, get frames and failures; never raises on bad input.

    Bytes are accumulated until a 0x00 delimiter. Each delimited chunk decodes to a
    :class:`Frame` or a :class:`DecodeFailure` (counted in ``stats``). An over-long run
    without a delimiter is dropped as garbage and the decoder resynchronises at the next 0x00.
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    _buffer: bytearray = field(default_factory=bytearray)
    _discarding: bool = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | DecodeFailure]:
        out: list[Frame | DecodeFailure] = []
        view = bytes(data)
        start = 0
        while start < len(view):
            zero = view.find(b"\x00", start)
            if zero < 0:
                self._append(view[start:])
                break
            self._append(view[start:zero])
            start = zero + 1
            if self._discarding:
                self._discarding = False
                out.append(DecodeFailure("oversize", "frame longer than the maximum; skipped to the delimiter", 0))
                self.stats.oversize += 1
                continue
            chunk = bytes(self._buffer)
            self._buffer.clear()
            if not chunk:
                continue  # back-to-back delimiters: idle fill, not an error
            try:
                frame = decode_body(cobs_decode(chunk))
            except FrameError as e:
                self.stats.bytes_skipped += len(chunk) + 1
                setattr(self.stats, e.reason, getattr(self.stats, e.reason) + 1)
                out.append(DecodeFailure(e.reason, str(e), len(chunk)))
                continue
            self.stats.frames_ok += 1
            out.append(frame)
        return out

    def _append(self, data: bytes) -> None:
        if self._discarding:
            self.stats.bytes_skipped += len(data)
            return
        self._buffer += data
        if len(self._buffer) > MAX_ENCODED_SIZE:
            self.stats.bytes_skipped += len(self._buffer)
            self._buffer.clear()
            self._discarding = True

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)
