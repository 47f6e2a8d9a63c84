"""Dual-energy line records: how one detector line travels inside a GVSP image block. Pure numpy.

A block is a GVSP image of ``height`` line records, each ``stride`` bytes:

    line record = header (48 bytes, big-endian) | high[N] | low[N]   (pixels in the block's pixel format)

    header: magic u16 = 0x4C4E ("LN") | version u8 = 1 | kind u8 (0 scan, 1 dark, 2 air)
            | n_channels u32 | line_index u32 (wraps) | flags u32 | encoder_counts i64
            | timestamp_ns u64 | reserved 16 bytes (zero)

Every line carries its own metadata, so a line whose bytes all arrived is usable even when
other packets of its block were lost. See ``SPEC.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge.gvsp import (
    PixelFormat,
    bytes_per_pixels,
    pack_mono12p,
    pack_mono12packed,
    unpack_mono12p,
    unpack_mono12packed,
)
from firmware_bridge.lines import LineBlock, LineKind

LINE_MAGIC = 0x4C4E
LINE_VERSION = 1
LINE_HEADER_SIZE = 48
SUPPORTED_FORMATS = (PixelFormat.MONO16, PixelFormat.MONO12_PACKED, PixelFormat.MONO12P)

KIND_CODES: dict[LineKind, int] = {LineKind.SCAN: 0, LineKind.DARK: 1, LineKind.AIR: 2}
CODE_KINDS: dict[int, LineKind] = {v: k for k, v in KIND_CODES.items()}

HEADER_DTYPE = np.dtype(
    [
        ("magic", ">u2"),
        ("version", "u1"),
        ("kind", "u1"),
        ("n_channels", ">u4"),
        ("line_index", ">u4"),
        ("flags", ">u4"),
        ("encoder_counts", ">i8"),
        ("timestamp_ns", ">u8"),
        ("reserved", "V16"),
    ]
)
assert HEADER_DTYPE.itemsize == LINE_HEADER_SIZE


class LineRecordError(ValueError):
    """A block layout or line record is inconsistent."""


def line_stride(n_channels: int, pixel_format: int) -> int:
    """Bytes per line record."""
    return LINE_HEADER_SIZE + bytes_per_pixels(pixel_format, 2 * n_channels)


def image_width_px(n_channels: int, pixel_format: int) -> int:
    """The GVSP/GenICam ``Width`` of a block: line record bytes expressed in pixels of the format."""
    header_px = LINE_HEADER_SIZE * 8 // (16 if pixel_format == PixelFormat.MONO16 else 12)
    return header_px + 2 * n_channels


def n_channels_from_width(width_px: int, pixel_format: int) -> int:
    header_px = LINE_HEADER_SIZE * 8 // (16 if pixel_format == PixelFormat.MONO16 else 12)
    rest = width_px - header_px
    if rest <= 0 or rest % 2:
        raise LineRecordError(f"width {width_px} px does not hold a line header plus two energies")
    return rest // 2


def encode_lines(
    high: npt.NDArray[np.uint16],
    low: npt.NDArray[np.uint16],
    first_line_index: int,
    encoder_counts: npt.NDArray[np.int64],
    timestamps_ns: npt.NDArray[np.int64],
    kind: LineKind,
    pixel_format: int = PixelFormat.MONO16,
) -> bytes:
    """The block payload for ``n`` lines (``high``/``low`` shape ``(n, N)``)."""
    if pixel_format not in SUPPORTED_FORMATS:
        raise LineRecordError(f"pixel format 0x{pixel_format:08X} is not supported for line records")
    n, n_ch = high.shape
    stride = line_stride(n_ch, pixel_format)
    out = np.zeros((n, stride), dtype=np.uint8)
    hdr = out[:, :LINE_HEADER_SIZE].copy().view(HEADER_DTYPE).reshape(n)
    hdr["magic"] = LINE_MAGIC
    hdr["version"] = LINE_VERSION
    hdr["kind"] = KIND_CODES[kind]
    hdr["n_channels"] = n_ch
    hdr["line_index"] = (np.arange(n, dtype=np.int64) + first_line_index) & 0xFFFFFFFF
    hdr["encoder_counts"] = encoder_counts
    hdr["timestamp_ns"] = timestamps_ns.astype(np.uint64)
    out[:, :LINE_HEADER_SIZE] = hdr.view(np.uint8).reshape(n, LINE_HEADER_SIZE)
    both = np.concatenate([high, low], axis=1)
    if pixel_format == PixelFormat.MONO16:
        out[:, LINE_HEADER_SIZE:] = both.astype("<u2").view(np.uint8).reshape(n, -1)
    elif pixel_format == PixelFormat.MONO12_PACKED:
        out[:, LINE_HEADER_SIZE:] = pack_mono12packed(both).reshape(n, -1)
    else:
        out[:, LINE_HEADER_SIZE:] = pack_mono12p(both).reshape(n, -1)
    return out.tobytes()


@dataclass(frozen=True, slots=True)
class DecodedLines:
    """A run of consecutive valid lines from one block, wire line index not yet unwrapped."""

    wire_first_index: int
    kind: LineKind
    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    encoder_counts: npt.NDArray[np.int64]
    timestamps_ns: npt.NDArray[np.int64]


def decode_lines(
    payload: npt.NDArray[np.uint8],
    line_ok: npt.NDArray[np.bool_],
    n_channels: int,
    pixel_format: int,
) -> tuple[list[DecodedLines], int]:
    """Split a block payload into runs of consecutive valid lines.

    ``payload`` holds ``len(line_ok)`` records; ``line_ok[i]`` says whether every byte of
    record ``i`` arrived. Lines that did not arrive, or whose header is invalid, are left out
    (never invented). Returns the runs and the number of lines rejected for a bad header.
    """
    if pixel_format not in SUPPORTED_FORMATS:
        raise LineRecordError(f"pixel format 0x{pixel_format:08X} is not supported for line records")
    stride = line_stride(n_channels, pixel_format)
    n = int(line_ok.shape[0])
    if payload.size < n * stride:
        raise LineRecordError(f"payload of {payload.size} bytes is shorter than {n} lines of {stride} bytes")
    records = payload[: n * stride].reshape(n, stride)
    hdr = np.ascontiguousarray(records[:, :LINE_HEADER_SIZE]).view(HEADER_DTYPE).reshape(n)
    valid = (
        line_ok
        & (hdr["magic"] == LINE_MAGIC)
        & (hdr["version"] == LINE_VERSION)
        & (hdr["n_channels"] == n_channels)
        & (hdr["kind"] <= 2)
    )
    bad_header = int(np.count_nonzero(line_ok & ~valid))
    runs: list[DecodedLines] = []
    idx = hdr["line_index"].astype(np.int64)
    kinds = hdr["kind"].astype(np.int64)
    i = 0
    while i < n:
        if not valid[i]:
            i += 1
            continue
        j = i + 1
        while j < n and valid[j] and kinds[j] == kinds[i] and idx[j] == ((idx[j - 1] + 1) & 0xFFFFFFFF):
            j += 1
        pix = records[i:j, LINE_HEADER_SIZE:]
        if pixel_format == PixelFormat.MONO16:
            both = np.ascontiguousarray(pix).view("<u2").astype(np.uint16).reshape(j - i, 2 * n_channels)
        elif pixel_format == PixelFormat.MONO12_PACKED:
            both = unpack_mono12packed(np.ascontiguousarray(pix).reshape(-1)).reshape(j - i, 2 * n_channels)
        else:
            both = unpack_mono12p(np.ascontiguousarray(pix).reshape(-1)).reshape(j - i, 2 * n_channels)
        runs.append(
            DecodedLines(
                wire_first_index=int(idx[i]),
                kind=CODE_KINDS[int(kinds[i])],
                high=np.ascontiguousarray(both[:, :n_channels]),
                low=np.ascontiguousarray(both[:, n_channels:]),
                encoder_counts=hdr["encoder_counts"][i:j].astype(np.int64),
                timestamps_ns=hdr["timestamp_ns"][i:j].astype(np.int64),
            )
        )
        i = j
    return runs, bad_header


class LineIndexUnwrapper:
    """Turns the wire's 32-bit line counter into a monotonic index (one instance per line kind)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, wire_index: int) -> int:
        if self._last is None:
            self._last = wire_index
            return wire_index
        delta = (wire_index - self._last) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        value = max(0, self._last + delta)
        self._last = value
        return value


def to_line_block(run: DecodedLines, unwrapper: LineIndexUnwrapper) -> LineBlock:
    return LineBlock(
        high=run.high,
        low=run.low,
        first_line_index=unwrapper.unwrap(run.wire_first_index),
        encoder_counts=run.encoder_counts,
        timestamps_ns=run.timestamps_ns,
        kind=run.kind,
    )
