"""GigE Vision Stream Protocol (GVSP) packet codecs and pixel (un)packing. Pure; no I/O.

See ``SPEC.md`` and ``shared/reference/gige-vision.md`` section 2. Header fields are big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

STANDARD_HEADER_SIZE = 8
EXTENDED_HEADER_SIZE = 20
IP_UDP_OVERHEAD = 28  # IPv4 (20) + UDP (8): subtracted from SCPS to get the GVSP packet size
LEADER_DATA_SIZE = 36
TRAILER_DATA_SIZE = 8
MAX_STANDARD_BLOCK_ID = 0xFFFF
MAX_STANDARD_PACKET_ID = 0xFFFFFF


class ContentFormat(IntEnum):
    LEADER = 1
    TRAILER = 2
    PAYLOAD = 3
    ALL_IN = 4
    H264 = 5
    MULTIZONE = 6
    MULTIPART = 7
    GENDC = 8


class PayloadType(IntEnum):
    IMAGE = 0x0001
    RAW = 0x0002
    CHUNK = 0x0004


CHUNK_FLAG = 0x4000


class PixelFormat(IntEnum):
    MONO8 = 0x01080001
    MONO12 = 0x01100005
    MONO12_PACKED = 0x010C0006
    MONO12P = 0x010C0047
    MONO16 = 0x01100007


class GvspError(ValueError):
    """A GVSP packet could not be parsed."""


@dataclass(frozen=True, slots=True)
class PacketHeader:
    status: int
    block_id: int
    content_format: int
    packet_id: int
    extended: bool
    size: int


@dataclass(frozen=True, slots=True)
class Leader:
    payload_type: int
    timestamp_ticks: int
    pixel_format: int
    width: int
    height: int
    offset_x: int
    offset_y: int
    padding_x: int
    padding_y: int


@dataclass(frozen=True, slots=True)
class Trailer:
    payload_type: int
    size_y: int


def header_size(extended: bool) -> int:
    return EXTENDED_HEADER_SIZE if extended else STANDARD_HEADER_SIZE


def encode_header(block_id: int, content_format: int, packet_id: int, extended: bool = False, status: int = 0) -> bytes:
    if extended:
        return struct.pack(">HHBBHQI", status, 0, 0x80 | content_format, 0, 0, block_id, packet_id)
    if not 0 < block_id <= MAX_STANDARD_BLOCK_ID:
        raise GvspError(f"standard block ID {block_id} outside 1..65535")
    if not 0 <= packet_id <= MAX_STANDARD_PACKET_ID:
        raise GvspError(f"standard packet ID {packet_id} does not fit 24 bits")
    return struct.pack(">HHI", status, block_id, (content_format << 24) | packet_id)


def decode_header(packet: bytes | memoryview) -> PacketHeader:
    if len(packet) < STANDARD_HEADER_SIZE:
        raise GvspError(f"GVSP packet of {len(packet)} bytes is shorter than the 8-byte header")
    status, block16, word = struct.unpack_from(">HHI", packet, 0)
    ei = (word >> 31) & 1
    content_format = (word >> 24) & 0x7F
    if not ei:
        return PacketHeader(status, block16, content_format, word & 0xFFFFFF, False, STANDARD_HEADER_SIZE)
    if len(packet) < EXTENDED_HEADER_SIZE:
        raise GvspError(f"extended GVSP packet of {len(packet)} bytes is shorter than the 20-byte header")
    block_id, packet_id = struct.unpack_from(">QI", packet, 8)
    return PacketHeader(status, block_id, content_format, packet_id, True, EXTENDED_HEADER_SIZE)


_LEADER = struct.Struct(">HHIIIIIIIHH")
_TRAILER = struct.Struct(">II")


def encode_leader(block_id: int, leader: Leader, extended: bool = False) -> bytes:
    body = _LEADER.pack(
        0,
        leader.payload_type,
        (leader.timestamp_ticks >> 32) & 0xFFFFFFFF,
        leader.timestamp_ticks & 0xFFFFFFFF,
        leader.pixel_format,
        leader.width,
        leader.height,
        leader.offset_x,
        leader.offset_y,
        leader.padding_x,
        leader.padding_y,
    )
    return encode_header(block_id, ContentFormat.LEADER, 0, extended) + body


def decode_leader(packet: bytes | memoryview, header: PacketHeader) -> Leader:
    if len(packet) < header.size + LEADER_DATA_SIZE:
        raise GvspError(f"leader of {len(packet)} bytes is shorter than {header.size + LEADER_DATA_SIZE}")
    _, ptype, ts_hi, ts_lo, pixfmt, width, height, ox, oy, px, py = _LEADER.unpack_from(packet, header.size)
    return Leader(ptype, (ts_hi << 32) | ts_lo, pixfmt, width, height, ox, oy, px, py)


def encode_trailer(block_id: int, packet_id: int, trailer: Trailer, extended: bool = False) -> bytes:
    return encode_header(block_id, ContentFormat.TRAILER, packet_id, extended) + _TRAILER.pack(
        trailer.payload_type, trailer.size_y
    )


def decode_trailer(packet: bytes | memoryview, header: PacketHeader) -> Trailer:
    if len(packet) < header.size + TRAILER_DATA_SIZE:
        raise GvspError(f"trailer of {len(packet)} bytes is shorter than {header.size + TRAILER_DATA_SIZE}")
    ptype, size_y = _TRAILER.unpack_from(packet, header.size)
    return Trailer(ptype & 0xFFFF, size_y)


def data_bytes_per_packet(scps_packet_size: int, extended: bool) -> int:
    """Image bytes in one payload packet for a stream-channel packet size (SCPS, IP+UDP+GVSP included)."""
    n = scps_packet_size - IP_UDP_OVERHEAD - header_size(extended)
    if n <= 0:
        raise GvspError(f"packet size {scps_packet_size} leaves no room for data")
    return n


def block_id_delta(new: int, old: int) -> int:
    """Signed distance between two standard block IDs in the wrap space 1..65535 (0 is invalid)."""
    d = ((new - 1) - (old - 1)) % MAX_STANDARD_BLOCK_ID
    return d - MAX_STANDARD_BLOCK_ID if d > MAX_STANDARD_BLOCK_ID // 2 else d


def next_block_id(block_id: int) -> int:
    """The standard block ID after ``block_id`` (65535 wraps to 1)."""
    return 1 if block_id >= MAX_STANDARD_BLOCK_ID else block_id + 1


def bytes_per_pixels(pixel_format: int, n_pixels: int) -> int:
    if pixel_format in (PixelFormat.MONO16, PixelFormat.MONO12):
        return 2 * n_pixels
    if pixel_format in (PixelFormat.MONO12_PACKED, PixelFormat.MONO12P):
        if n_pixels % 2:
            raise GvspError(f"12-bit packed formats need an even pixel count, got {n_pixels}")
        return 3 * n_pixels // 2
    if pixel_format == PixelFormat.MONO8:
        return n_pixels
    raise GvspError(f"unsupported pixel format 0x{pixel_format:08X}")


def pack_mono12packed(pixels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]:
    """Legacy GEV Mono12Packed (MSB-first): pairs ``p0 p1`` -> ``p0>>4, (p0&0xF)|(p1&0xF)<<4, p1>>4``."""
    flat = pixels.reshape(-1, 2).astype(np.uint16) & 0x0FFF
    p0, p1 = flat[:, 0], flat[:, 1]
    out = np.empty((flat.shape[0], 3), dtype=np.uint8)
    out[:, 0] = p0 >> 4
    out[:, 1] = (p0 & 0x0F) | ((p1 & 0x0F) << 4)
    out[:, 2] = p1 >> 4
    return out.reshape(-1)


def unpack_mono12packed(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    if data.size % 3:
        raise GvspError(f"Mono12Packed data of {data.size} bytes is not a multiple of 3")
    b = data.reshape(-1, 3).astype(np.uint16)
    out = np.empty((b.shape[0], 2), dtype=np.uint16)
    out[:, 0] = (b[:, 0] << 4) | (b[:, 1] & 0x0F)
    out[:, 1] = (b[:, 2] << 4) | (b[:, 1] >> 4)
    return out.reshape(-1)


def pack_mono12p(pixels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]:
    """PFNC Mono12p (LSB-first): ``p0&0xFF, (p0>>8)|(p1&0xF)<<4, p1>>4``."""
    flat = pixels.reshape(-1, 2).astype(np.uint16) & 0x0FFF
    p0, p1 = flat[:, 0], flat[:, 1]
    out = np.empty((flat.shape[0], 3), dtype=np.uint8)
    out[:, 0] = p0 & 0xFF
    out[:, 1] = (p0 >> 8) | ((p1 & 0x0F) << 4)
    out[:, 2] = p1 >> 4
    return out.reshape(-1)


def unpack_mono12p(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    if data.size % 3:
        raise GvspError(f"Mono12p data of {data.size} bytes is not a multiple of 3")
    b = data.reshape(-1, 3).astype(np.uint16)
    out = np.empty((b.shape[0], 2), dtype=np.uint16)
    out[:, 0] = b[:, 0] | ((b[:, 1] & 0x0F) << 8)
    out[:, 1] = (b[:, 1] >> 4) | (b[:, 2] << 4)
    return out.reshape(-1)
