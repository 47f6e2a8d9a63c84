"""GigE Vision Control Protocol (GVCP) packet codecs and register map. Pure; no I/O.

All fields are big-endian. See ``SPEC.md`` and ``shared/reference/gige-vision.md`` section 1.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

GVCP_PORT = 3956
GVCP_KEY = 0x42
FLAG_ACK_REQUIRED = 0x01
FLAG_BROADCAST_ACK = 0x10  # on DISCOVERY
FLAG_EXTENDED_ID = 0x10  # on PACKETRESEND
HEADER_SIZE = 8
MAX_READMEM = 512
DISCOVERY_ACK_SIZE = 0xF8


class Cmd(IntEnum):
    DISCOVERY = 0x0002
    FORCEIP = 0x0004
    PACKETRESEND = 0x0040
    READREG = 0x0080
    WRITEREG = 0x0082
    READMEM = 0x0084
    WRITEMEM = 0x0086
    PENDING_ACK = 0x0089


class Status(IntEnum):
    SUCCESS = 0x0000
    RESENT_PACKET = 0x0100  # GVSP: a retransmitted packet
    NOT_IMPLEMENTED = 0x8001
    INVALID_PARAMETER = 0x8002
    INVALID_ADDRESS = 0x8003
    WRITE_PROTECT = 0x8004
    BAD_ALIGNMENT = 0x8005
    ACCESS_DENIED = 0x8006
    BUSY = 0x8007
    PACKET_UNAVAILABLE = 0x800C
    DATA_OVERRUN = 0x800D
    INVALID_HEADER = 0x800E
    PACKET_NOT_YET_AVAILABLE = 0x8010
    PACKET_AND_PREVIOUS_REMOVED = 0x8011
    PACKET_REMOVED = 0x8012
    ERROR = 0x8FFF


UNAVAILABLE_STATUSES = frozenset({Status.PACKET_UNAVAILABLE, Status.PACKET_AND_PREVIOUS_REMOVED, Status.PACKET_REMOVED})


class Reg(IntEnum):
    """Bootstrap registers (GigE Vision) used by the bridge."""

    VERSION = 0x0000
    DEVICE_MODE = 0x0004
    MAC_HIGH = 0x0008
    MAC_LOW = 0x000C
    CURRENT_IP = 0x0024
    MANUFACTURER = 0x0048  # 32 bytes
    MODEL = 0x0068  # 32 bytes
    DEVICE_VERSION = 0x0088  # 32 bytes
    MANUFACTURER_INFO = 0x00A8  # 48 bytes
    SERIAL = 0x00D8  # 16 bytes
    USER_NAME = 0x00E8  # 16 bytes
    XML_URL_0 = 0x0200  # 512 bytes
    XML_URL_1 = 0x0400  # 512 bytes
    N_INTERFACES = 0x0600
    N_MESSAGE_CHANNELS = 0x0900
    N_STREAM_CHANNELS = 0x0904
    GVCP_CAPABILITY = 0x0934
    HEARTBEAT_TIMEOUT = 0x0938
    TICK_FREQ_HIGH = 0x093C
    TICK_FREQ_LOW = 0x0940
    GVCP_CONFIG = 0x0954
    CCP = 0x0A00
    SCP0 = 0x0D00  # stream channel 0: host port (lower 16 bits)
    SCPS0 = 0x0D04  # packet size (lower 16 bits)
    SCPD0 = 0x0D08  # inter-packet delay (ticks)
    SCDA0 = 0x0D18  # destination IP
    SCSP0 = 0x0D1C  # source port


CCP_EXCLUSIVE = 0x1
CCP_CONTROL = 0x2
CAP_WRITEMEM = 1 << 1
CAP_PACKETRESEND = 1 << 2
CAP_PENDING_ACK = 1 << 5


class GvcpError(ValueError):
    """A GVCP packet could not be parsed."""


@dataclass(frozen=True, slots=True)
class CommandHeader:
    flags: int
    command: int
    length: int
    req_id: int


@dataclass(frozen=True, slots=True)
class AckHeader:
    status: int
    ack: int
    length: int
    ack_id: int


def encode_command(command: int, payload: bytes, req_id: int, flags: int = FLAG_ACK_REQUIRED) -> bytes:
    if not 0 <= req_id <= 0xFFFF:
        raise GvcpError(f"req_id {req_id} does not fit 16 bits")
    return struct.pack(">BBHHH", GVCP_KEY, flags, command, len(payload), req_id) + payload


def decode_command(packet: bytes) -> tuple[CommandHeader, bytes]:
    if len(packet) < HEADER_SIZE:
        raise GvcpError(f"GVCP command of {len(packet)} bytes is shorter than the 8-byte header")
    key, flags, command, length, req_id = struct.unpack_from(">BBHHH", packet, 0)
    if key != GVCP_KEY:
        raise GvcpError(f"GVCP key 0x{key:02X} is not 0x42")
    if HEADER_SIZE + length > len(packet):
        raise GvcpError(f"GVCP command announces {length} payload bytes, {len(packet) - HEADER_SIZE} present")
    return CommandHeader(flags, command, length, req_id), packet[HEADER_SIZE : HEADER_SIZE + length]


def encode_ack(status: int, ack: int, payload: bytes, ack_id: int) -> bytes:
    return struct.pack(">HHHH", status, ack, len(payload), ack_id) + payload


def decode_ack(packet: bytes) -> tuple[AckHeader, bytes]:
    if len(packet) < HEADER_SIZE:
        raise GvcpError(f"GVCP ack of {len(packet)} bytes is shorter than the 8-byte header")
    status, ack, length, ack_id = struct.unpack_from(">HHHH", packet, 0)
    if HEADER_SIZE + length > len(packet):
        raise GvcpError(f"GVCP ack announces {length} payload bytes, {len(packet) - HEADER_SIZE} present")
    return AckHeader(status, ack, length, ack_id), packet[HEADER_SIZE : HEADER_SIZE + length]


def encode_readreg(addresses: list[int]) -> bytes:
    return b"".join(struct.pack(">I", a) for a in addresses)


def decode_u32_list(payload: bytes, what: str) -> list[int]:
    if len(payload) % 4:
        raise GvcpError(f"{what} payload of {len(payload)} bytes is not a multiple of 4")
    return [v for (v,) in struct.iter_unpack(">I", payload)]


def encode_writereg(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack(">II", a, v & 0xFFFFFFFF) for a, v in pairs)


def decode_writereg(payload: bytes) -> list[tuple[int, int]]:
    if len(payload) % 8:
        raise GvcpError(f"WRITEREG payload of {len(payload)} bytes is not a multiple of 8")
    return [(a, v) for a, v in struct.iter_unpack(">II", payload)]


def encode_readmem(address: int, count: int) -> bytes:
    return struct.pack(">IHH", address, 0, count)


def decode_readmem(payload: bytes) -> tuple[int, int]:
    if len(payload) != 8:
        raise GvcpError(f"READMEM payload must be 8 bytes, got {len(payload)}")
    address, _, count = struct.unpack(">IHH", payload)
    return address, count


@dataclass(frozen=True, slots=True)
class ResendRequest:
    stream_channel: int
    block_id: int
    first_packet_id: int
    last_packet_id: int
    extended: bool


def encode_resend(req: ResendRequest) -> bytes:
    """PACKETRESEND payload (12 bytes standard, 20 bytes extended-ID)."""
    if req.extended:
        return struct.pack(">IIIQ", 0, req.first_packet_id, req.last_packet_id, req.block_id)
    return struct.pack(
        ">HHII",
        req.stream_channel,
        req.block_id & 0xFFFF,
        req.first_packet_id & 0xFFFFFF,
        req.last_packet_id & 0xFFFFFF,
    )


def decode_resend(payload: bytes, extended: bool) -> ResendRequest:
    if extended:
        if len(payload) != 20:
            raise GvcpError(f"extended PACKETRESEND payload must be 20 bytes, got {len(payload)}")
        ch, first, last, block = struct.unpack(">IIIQ", payload)
        return ResendRequest(ch >> 16, block, first, last, True)
    if len(payload) != 12:
        raise GvcpError(f"PACKETRESEND payload must be 12 bytes, got {len(payload)}")
    ch, block, first, last = struct.unpack(">HHII", payload)
    return ResendRequest(ch, block, first & 0xFFFFFF, last & 0xFFFFFF, False)


_XML_URL = re.compile(r"^[Ll]ocal:(?P<file>[^;]+);(?P<addr>[0-9A-Fa-f]+);(?P<len>[0-9A-Fa-f]+)")


@dataclass(frozen=True, slots=True)
class XmlLocation:
    filename: str
    address: int
    length: int


def parse_xml_url(url: str) -> XmlLocation:
    """Parse ``Local:<file>;<hex address>;<hex length>`` (hexadecimal without prefix)."""
    m = _XML_URL.match(url.strip("\x00 ").strip())
    if not m:
        raise GvcpError(f"unsupported GenICam XML URL {url!r} (expected Local:<file>;<hex addr>;<hex len>)")
    return XmlLocation(m["file"], int(m["addr"], 16), int(m["len"], 16))


@dataclass(frozen=True, slots=True)
class DiscoveryInfo:
    version_major: int
    version_minor: int
    mac: int
    ip: str
    manufacturer: str
    model: str
    device_version: str
    serial: str
    user_name: str


def _cstr(data: bytes) -> str:
    return data.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def decode_discovery_ack(payload: bytes) -> DiscoveryInfo:
    if len(payload) < DISCOVERY_ACK_SIZE:
        raise GvcpError(f"DISCOVERY ack payload of {len(payload)} bytes is shorter than {DISCOVERY_ACK_SIZE}")
    major, minor = struct.unpack_from(">HH", payload, 0)
    mac_hi, mac_lo = struct.unpack_from(">II", payload, 0x08)
    ip = ".".join(str(b) for b in payload[0x24:0x28])
    return DiscoveryInfo(
        major,
        minor,
        ((mac_hi & 0xFFFF) << 32) | mac_lo,
        ip,
        _cstr(payload[0x48:0x68]),
        _cstr(payload[0x68:0x88]),
        _cstr(payload[0x88:0xA8]),
        _cstr(payload[0xD8:0xE8]),
        _cstr(payload[0xE8:0xF8]),
    )
