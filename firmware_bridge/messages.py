"""I/O board messages: the payloads carried in serial frames (see ``SPEC.md``, "Messages").

Every payload starts with a one-byte message id; fields are big-endian. Pure; no I/O.
Timestamps (``at_ns``) are the board's clock in nanoseconds (the emulator uses the host's
``time.time_ns()``; a real board is synchronised by the host at connect).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum


class MessageError(ValueError):
    """A payload could not be decoded (unknown id, wrong length, bad field)."""


class MsgId(IntEnum):
    HEARTBEAT = 0x01
    BELT_STATE = 0x10
    ENCODER_TICK = 0x11
    PHOTO_EYE_EDGE = 0x12
    BARCODE_READ = 0x13
    GENERATOR_STATUS = 0x14
    GATE_COMMAND = 0x20
    GATE_ACK = 0x21
    GATE_ACTUATED = 0x22
    FAULT = 0x7F


class GateReason(IntEnum):
    """Why the board accepted or refused a gate command."""

    OK = 0
    UNKNOWN_PARCEL = 1
    TOO_LATE = 2  # the parcel had already reached the gate
    DUPLICATE = 3  # same sequence number again: the first answer is repeated


@dataclass(frozen=True, slots=True)
class Heartbeat:
    counter: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class BeltStateMsg:
    running: bool
    speed_mm_s: float
    at_ns: int


@dataclass(frozen=True, slots=True)
class EncoderTickMsg:
    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class PhotoEyeEdgeMsg:
    """Entry photo-eye edge; ``parcel_seq`` is the board's tracking number, assigned on each blocked edge."""

    eye_id: int
    blocked: bool
    parcel_seq: int
    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class BarcodeReadMsg:
    """Upstream barcode scanner result: ``codes`` empty = no-read, several = multi-read."""

    reader_id: int
    codes: tuple[str, ...]
    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class GeneratorStatusMsg:
    xray_on: bool
    interlock_closed: bool
    kv: float
    ma: float
    at_ns: int


@dataclass(frozen=True, slots=True)
class GateCommandMsg:
    """Host -> board: route parcel ``parcel_seq`` (divert = reject lane) if it has not reached the gate yet."""

    parcel_seq: int
    divert: bool
    sequence: int
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class GateAckMsg:
    parcel_seq: int
    sequence: int
    accepted: bool
    divert: bool
    reason: GateReason
    at_ns: int


@dataclass(frozen=True, slots=True)
class GateActuatedMsg:
    """The gate acted on a parcel: ``commanded`` False means the fail-secure default (divert) was applied."""

    parcel_seq: int
    divert: bool
    commanded: bool
    encoder_counts: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class FaultMsg:
    code: int
    text: str
    at_ns: int


Message = (
    Heartbeat
    | BeltStateMsg
    | EncoderTickMsg
    | PhotoEyeEdgeMsg
    | BarcodeReadMsg
    | GeneratorStatusMsg
    | GateCommandMsg
    | GateAckMsg
    | GateActuatedMsg
    | FaultMsg
)

_HEARTBEAT = struct.Struct(">BIQ")
_BELT = struct.Struct(">BBIQ")  # running, speed in um/s, at_ns
_TICK = struct.Struct(">BqQ")
_EYE = struct.Struct(">BBBBIqQ")  # id, eye, blocked, reserved, parcel_seq, counts, at_ns
_BARCODE_HEAD = struct.Struct(">BBqQB")
_GEN = struct.Struct(">BBBBHHQ")  # id, xray_on, interlock_closed, reserved, kV*10, mA*100, at_ns
_GATE_CMD = struct.Struct(">BIBIQ")
_GATE_ACK = struct.Struct(">BIIBBBQ")
_GATE_ACT = struct.Struct(">BIBBqQ")
_FAULT_HEAD = struct.Struct(">BHQB")

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise MessageError(f"{name}={value} outside [{lo}, {hi}]")


def _encode_text(name: str, text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise MessageError(f"{name} longer than 255 bytes: {text[:40]!r}...")
    return bytes([len(raw)]) + raw


def encode_message(msg: Message) -> bytes:
    """Payload bytes for one message; raises :class:`MessageError` for values that do not fit the wire."""
    if isinstance(msg, Heartbeat):
        _check_range("counter", msg.counter, 0, _U32)
        return _HEARTBEAT.pack(MsgId.HEARTBEAT, msg.counter, msg.at_ns & _U64)
    if isinstance(msg, BeltStateMsg):
        speed_um_s = round(msg.speed_mm_s * 1000)
        _check_range("speed_um_s", speed_um_s, 0, _U32)
        return _BELT.pack(MsgId.BELT_STATE, int(msg.running), speed_um_s, msg.at_ns & _U64)
    if isinstance(msg, EncoderTickMsg):
        return _TICK.pack(MsgId.ENCODER_TICK, msg.encoder_counts, msg.at_ns & _U64)
    if isinstance(msg, PhotoEyeEdgeMsg):
        _check_range("eye_id", msg.eye_id, 0, 255)
        _check_range("parcel_seq", msg.parcel_seq, 0, _U32)
        return _EYE.pack(
            MsgId.PHOTO_EYE_EDGE, msg.eye_id, int(msg.blocked), 0, msg.parcel_seq, msg.encoder_counts, msg.at_ns & _U64
        )
    if isinstance(msg, BarcodeReadMsg):
        _check_range("reader_id", msg.reader_id, 0, 255)
        _check_range("n_codes", len(msg.codes), 0, 16)
        head = _BARCODE_HEAD.pack(
            MsgId.BARCODE_READ, msg.reader_id, msg.encoder_counts, msg.at_ns & _U64, len(msg.codes)
        )
        return head + b"".join(_encode_text("barcode", c) for c in msg.codes)
    if isinstance(msg, GeneratorStatusMsg):
        kv10, ma100 = round(msg.kv * 10), round(msg.ma * 100)
        _check_range("kv*10", kv10, 0, 0xFFFF)
        _check_range("ma*100", ma100, 0, 0xFFFF)
        return _GEN.pack(
            MsgId.GENERATOR_STATUS, int(msg.xray_on), int(msg.interlock_closed), 0, kv10, ma100, msg.at_ns & _U64
        )
    if isinstance(msg, GateCommandMsg):
        _check_range("parcel_seq", msg.parcel_seq, 0, _U32)
        _check_range("sequence", msg.sequence, 0, _U32)
        return _GATE_CMD.pack(MsgId.GATE_COMMAND, msg.parcel_seq, int(msg.divert), msg.sequence, msg.deadline_ns & _U64)
    if isinstance(msg, GateAckMsg):
        _check_range("parcel_seq", msg.parcel_seq, 0, _U32)
        _check_range("sequence", msg.sequence, 0, _U32)
        return _GATE_ACK.pack(
            MsgId.GATE_ACK,
            msg.parcel_seq,
            msg.sequence,
            int(msg.accepted),
            int(msg.divert),
            int(msg.reason),
            msg.at_ns & _U64,
        )
    if isinstance(msg, GateActuatedMsg):
        _check_range("parcel_seq", msg.parcel_seq, 0, _U32)
        return _GATE_ACT.pack(
            MsgId.GATE_ACTUATED,
            msg.parcel_seq,
            int(msg.divert),
            int(msg.commanded),
            msg.encoder_counts,
            msg.at_ns & _U64,
        )
    if isinstance(msg, FaultMsg):
        _check_range("code", msg.code, 0, 0xFFFF)
        raw = msg.text.encode("utf-8")[:255]
        return _FAULT_HEAD.pack(MsgId.FAULT, msg.code, msg.at_ns & _U64, len(raw)) + raw
    raise MessageError(f"cannot encode {type(msg).__name__}")


def _unpack(st: struct.Struct, payload: bytes, name: str) -> tuple[int, ...]:
    if len(payload) != st.size:
        raise MessageError(f"{name} payload must be {st.size} bytes, got {len(payload)}")
    values: tuple[int, ...] = st.unpack(payload)
    return values


def _bool(name: str, value: int) -> bool:
    if value not in (0, 1):
        raise MessageError(f"{name} must be 0 or 1, got {value}")
    return value == 1


def _decode_text(payload: bytes, offset: int, name: str) -> tuple[str, int]:
    if offset >= len(payload):
        raise MessageError(f"{name}: length byte missing at offset {offset}")
    n = payload[offset]
    end = offset + 1 + n
    if end > len(payload):
        raise MessageError(f"{name}: {n} bytes announced, {len(payload) - offset - 1} present")
    try:
        return payload[offset + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as e:
        raise MessageError(f"{name} is not valid UTF-8") from e


def decode_message(payload: bytes) -> Message:
    """Parse one payload; raises :class:`MessageError` naming the problem."""
    if not payload:
        raise MessageError("empty payload: no message id")
    try:
        msg_id = MsgId(payload[0])
    except ValueError as e:
        raise MessageError(f"unknown message id 0x{payload[0]:02X}") from e
    if msg_id is MsgId.HEARTBEAT:
        _, counter, at = _unpack(_HEARTBEAT, payload, "HEARTBEAT")
        return Heartbeat(counter, at)
    if msg_id is MsgId.BELT_STATE:
        _, running, speed, at = _unpack(_BELT, payload, "BELT_STATE")
        return BeltStateMsg(_bool("running", running), speed / 1000.0, at)
    if msg_id is MsgId.ENCODER_TICK:
        _, counts, at = _unpack(_TICK, payload, "ENCODER_TICK")
        return EncoderTickMsg(counts, at)
    if msg_id is MsgId.PHOTO_EYE_EDGE:
        _, eye, blocked, _reserved, seq, counts, at = _unpack(_EYE, payload, "PHOTO_EYE_EDGE")
        return PhotoEyeEdgeMsg(eye, _bool("blocked", blocked), seq, counts, at)
    if msg_id is MsgId.BARCODE_READ:
        if len(payload) < _BARCODE_HEAD.size:
            raise MessageError(f"BARCODE_READ payload shorter than {_BARCODE_HEAD.size} bytes")
        _, reader, counts, at, n = _BARCODE_HEAD.unpack_from(payload, 0)
        offset = _BARCODE_HEAD.size
        codes: list[str] = []
        for i in range(n):
            code, offset = _decode_text(payload, offset, f"barcode {i}")
            codes.append(code)
        if offset != len(payload):
            raise MessageError(f"BARCODE_READ has {len(payload) - offset} trailing bytes")
        return BarcodeReadMsg(reader, tuple(codes), counts, at)
    if msg_id is MsgId.GENERATOR_STATUS:
        _, xray, interlock, _r, kv10, ma100, at = _unpack(_GEN, payload, "GENERATOR_STATUS")
        return GeneratorStatusMsg(
            _bool("xray_on", xray), _bool("interlock_closed", interlock), kv10 / 10, ma100 / 100, at
        )
    if msg_id is MsgId.GATE_COMMAND:
        _, pseq, divert, seq, deadline = _unpack(_GATE_CMD, payload, "GATE_COMMAND")
        return GateCommandMsg(pseq, _bool("divert", divert), seq, deadline)
    if msg_id is MsgId.GATE_ACK:
        _, pseq, seq, accepted, divert, reason, at = _unpack(_GATE_ACK, payload, "GATE_ACK")
        try:
            gate_reason = GateReason(reason)
        except ValueError as e:
            raise MessageError(f"unknown gate reason {reason}") from e
        return GateAckMsg(pseq, seq, _bool("accepted", accepted), _bool("divert", divert), gate_reason, at)
    if msg_id is MsgId.GATE_ACTUATED:
        _, pseq, divert, commanded, counts, at = _unpack(_GATE_ACT, payload, "GATE_ACTUATED")
        return GateActuatedMsg(pseq, _bool("divert", divert), _bool("commanded", commanded), counts, at)
    # FAULT
    if len(payload) < _FAULT_HEAD.size:
        raise MessageError(f"FAULT payload shorter than {_FAULT_HEAD.size} bytes")
    _, code, at, n = _FAULT_HEAD.unpack_from(payload, 0)
    text, end = _decode_text(payload, _FAULT_HEAD.size - 1, "fault text")
    if end != len(payload):
        raise MessageError(f"FAULT has {len(payload) - end} trailing bytes")
    return FaultMsg(code, text, at)
