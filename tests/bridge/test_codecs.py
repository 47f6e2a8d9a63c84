"""Wire codecs against the golden vectors in firmware_bridge/golden (the wire contract of SPEC.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import gvcp, gvsp
from firmware_bridge.line_records import (
    LineIndexUnwrapper,
    decode_lines,
    encode_lines,
    image_width_px,
    line_stride,
    n_channels_from_width,
)
from firmware_bridge.lines import LineKind
from firmware_bridge.messages import (
    GateAckMsg,
    MessageError,
    decode_message,
    encode_message,
)
from firmware_bridge.serial_codec import (
    DecodeFailure,
    Frame,
    FrameError,
    FrameType,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    decode_frame,
    encode_frame,
)

GOLDEN = Path(__file__).resolve().parents[2] / "firmware_bridge" / "golden"
SERIAL = json.loads((GOLDEN / "serial_vectors.json").read_text())
GIGE = json.loads((GOLDEN / "gige_vectors.json").read_text())


def test_crc_is_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_reference_worked_example_bytes() -> None:
    # serial-and-plc.md 1.3: CMD seq 7, payload "BELT_START\0\0"
    wire = encode_frame(Frame(FrameType.CMD, 7, b"BELT_START\x00\x00"))
    assert wire.hex(" ") == "04 01 01 07 0c 0c 42 45 4c 54 5f 53 54 41 52 54 01 03 ed 75 00"


@pytest.mark.parametrize("vector", SERIAL["frames"], ids=lambda v: v["name"])
def test_serial_golden_frames(vector: dict[str, object]) -> None:
    decoder = StreamDecoder()
    items: list[Frame | DecodeFailure] = []
    for chunk in vector["chunks"]:  # type: ignore[attr-defined]
        items += decoder.feed(bytes.fromhex(chunk))
    frames = [i for i in items if isinstance(i, Frame)]
    failures = [i.reason for i in items if isinstance(i, DecodeFailure)]
    expect = vector["expect"]
    assert [(f.type.name, f.seq, f.payload.hex()) for f in frames] == [
        (e["type"], e["seq"], e["payload"])
        for e in expect  # type: ignore[attr-defined]
    ]
    assert failures == vector["failures"]
    assert decoder.stats.frames_bad == len(failures)
    # the whole wire in one piece decodes the same
    whole = StreamDecoder().feed(bytes.fromhex(vector["wire"]))  # type: ignore[arg-type]
    assert [i for i in whole if isinstance(i, Frame)] == frames


@pytest.mark.parametrize("vector", SERIAL["messages"], ids=lambda v: v["name"])
def test_message_golden_payloads(vector: dict[str, object]) -> None:
    msg = decode_message(bytes.fromhex(vector["payload"]))  # type: ignore[arg-type]
    fields = vector["fields"]
    for name, expected in fields.items():  # type: ignore[attr-defined]
        value = getattr(msg, name)
        if isinstance(value, tuple):
            value = list(value)
        assert value == expected, name
    assert encode_message(msg).hex() == vector["payload"]


def test_bad_frames_raise_named_errors() -> None:
    good = encode_frame(Frame(FrameType.EVT, 1, b"\x01\x02"))
    with pytest.raises(FrameError) as e:
        decode_frame(good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:])
    assert e.value.reason in ("bad_crc", "bad_cobs")
    with pytest.raises(FrameError, match="shorter"):
        decode_frame(cobs_encode(b"\x01\x02\x03") + b"\x00")


def test_gate_ack_rejects_unknown_reason() -> None:
    payload = bytearray(encode_message(GateAckMsg(1, 2, True, False, 0, 3)))  # type: ignore[arg-type]
    payload[11] = 99
    with pytest.raises(MessageError, match="reason"):
        decode_message(bytes(payload))


def test_cobs_round_trip_edge_cases() -> None:
    for data in (b"", b"\x00", b"\x00\x00", bytes(range(1, 255)), bytes(range(256)) * 3, b"\x11" * 600):
        enc = cobs_encode(data)
        assert 0 not in enc
        assert cobs_decode(enc) == data


def test_decoder_resynchronises_after_oversize_garbage() -> None:
    decoder = StreamDecoder()
    out = decoder.feed(b"\x55" * 5000)
    assert out == []
    good = encode_frame(Frame(FrameType.ACK, 4))
    out = decoder.feed(b"\x00" + good)
    assert [i for i in out if isinstance(i, Frame)] == [Frame(FrameType.ACK, 4)]
    assert decoder.stats.oversize == 1
    assert decoder.stats.bytes_skipped >= 5000


@pytest.mark.parametrize("vector", GIGE["gvsp"], ids=lambda v: v["name"])
def test_gvsp_golden_packets(vector: dict[str, object]) -> None:
    packet = bytes.fromhex(vector["hex"])  # type: ignore[arg-type]
    h = gvsp.decode_header(packet)
    assert (h.block_id, h.packet_id, h.content_format, h.extended) == (
        vector["block_id"],
        vector["packet_id"],
        vector["format"],
        vector["extended"],
    )
    assert h.status == vector.get("status", 0)
    if h.content_format == gvsp.ContentFormat.LEADER:
        leader = gvsp.decode_leader(packet, h)
        assert (leader.width, leader.height, leader.pixel_format, leader.timestamp_ticks) == (
            vector["width"],
            vector["height"],
            vector["pixel_format"],
            vector["timestamp"],
        )
        assert len(packet) == 44
    if h.content_format == gvsp.ContentFormat.TRAILER:
        assert gvsp.decode_trailer(packet, h).size_y == vector["size_y"]
        assert len(packet) == 16


@pytest.mark.parametrize("vector", GIGE["gvcp"], ids=lambda v: v["name"])
def test_gvcp_golden_commands(vector: dict[str, object]) -> None:
    header, payload = gvcp.decode_command(bytes.fromhex(vector["hex"]))  # type: ignore[arg-type]
    if header.command == gvcp.Cmd.PACKETRESEND:
        req = gvcp.decode_resend(payload, bool(header.flags & gvcp.FLAG_EXTENDED_ID))
        assert (req.block_id, req.first_packet_id, req.last_packet_id, req.extended) == (
            vector["block_id"],
            vector["first"],
            vector["last"],
            vector["extended"],
        )
        assert len(payload) == (20 if req.extended else 12)
        assert not header.flags & gvcp.FLAG_ACK_REQUIRED
    else:
        assert header.flags & gvcp.FLAG_ACK_REQUIRED
        assert len(payload) % 4 == 0


@pytest.mark.parametrize("vector", GIGE["pixels"], ids=lambda v: v["name"])
def test_12bit_packing_golden(vector: dict[str, object]) -> None:
    pixels = np.array(vector["pixels"], dtype=np.uint16)
    data = np.frombuffer(bytes.fromhex(vector["hex"]), dtype=np.uint8)  # type: ignore[arg-type]
    if "Packed" in str(vector["name"]):
        assert gvsp.unpack_mono12packed(data).tolist() == pixels.tolist()
        assert gvsp.pack_mono12packed(pixels).tobytes() == data.tobytes()
    else:
        assert gvsp.unpack_mono12p(data).tolist() == pixels.tolist()
        assert gvsp.pack_mono12p(pixels).tobytes() == data.tobytes()


def test_block_id_wrap_arithmetic() -> None:
    assert gvsp.next_block_id(0xFFFF) == 1
    assert gvsp.block_id_delta(1, 0xFFFF) == 1
    assert gvsp.block_id_delta(0xFFFF, 1) == -1
    assert gvsp.block_id_delta(5, 0xFFF0) == 5 + 0xF
    with pytest.raises(gvsp.GvspError):
        gvsp.encode_header(0, gvsp.ContentFormat.PAYLOAD, 1)


def test_xml_url_is_hexadecimal() -> None:
    loc = gvcp.parse_xml_url("Local:arv-fake-camera.xml;10000;3e67\x00\x00")
    assert (loc.filename, loc.address, loc.length) == ("arv-fake-camera.xml", 0x10000, 0x3E67)
    with pytest.raises(gvcp.GvcpError):
        gvcp.parse_xml_url("http://example.com/cam.xml")


@pytest.mark.parametrize(
    "pixel_format", [gvsp.PixelFormat.MONO16, gvsp.PixelFormat.MONO12_PACKED, gvsp.PixelFormat.MONO12P]
)
def test_line_records_round_trip_and_skip_lost_lines(pixel_format: int) -> None:
    rng = np.random.default_rng(3)
    n, ch = 6, 10
    high = rng.integers(0, 4096, (n, ch), dtype=np.uint16)
    low = rng.integers(0, 4096, (n, ch), dtype=np.uint16)
    enc = np.arange(n, dtype=np.int64) * 16 + 5
    ts = np.arange(n, dtype=np.int64) * 640_000 + 10**18
    payload = encode_lines(high, low, 0xFFFFFFFE, enc, ts, LineKind.SCAN, pixel_format)
    assert len(payload) == n * line_stride(ch, pixel_format)
    assert n_channels_from_width(image_width_px(ch, pixel_format), pixel_format) == ch
    ok = np.ones(n, dtype=bool)
    ok[3] = False
    runs, bad = decode_lines(np.frombuffer(payload, dtype=np.uint8), ok, ch, pixel_format)
    assert bad == 0
    assert [r.high.shape[0] for r in runs] == [3, 2]
    np.testing.assert_array_equal(runs[0].high, high[:3])
    np.testing.assert_array_equal(runs[1].low, low[4:])
    np.testing.assert_array_equal(runs[1].encoder_counts, enc[4:])
    np.testing.assert_array_equal(runs[0].timestamps_ns, ts[:3])
    unwrap = LineIndexUnwrapper()
    assert unwrap.unwrap(runs[0].wire_first_index) == 0xFFFFFFFE
    assert unwrap.unwrap(runs[1].wire_first_index) == 0xFFFFFFFE + 4  # past the 32-bit wrap


def test_line_record_with_corrupt_header_is_rejected() -> None:
    h = np.ones((2, 4), dtype=np.uint16)
    payload = bytearray(encode_lines(h, h, 0, np.zeros(2, np.int64), np.zeros(2, np.int64), LineKind.AIR))
    payload[0] ^= 0xFF  # magic of line 0
    runs, bad = decode_lines(np.frombuffer(bytes(payload), dtype=np.uint8), np.ones(2, dtype=bool), 4, 0x01100007)
    assert bad == 1
    assert len(runs) == 1 and runs[0].kind is LineKind.AIR and runs[0].wire_first_index == 1
