"""Hypothesis fuzzing of every decoder: arbitrary bytes give a result or the module's own error, nothing else."""

from __future__ import annotations

import contextlib
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import gvcp, gvsp
from firmware_bridge.assembly import AssemblerConfig, ParcelAssembler
from firmware_bridge.genicam import GenicamError, resolve_features
from firmware_bridge.gige_receiver import GvspReceiver, ResendTiming
from firmware_bridge.line_records import LineRecordError, decode_lines
from firmware_bridge.lines import LineBlock, LineKind
from firmware_bridge.messages import MessageError, decode_message, encode_message
from firmware_bridge.serial_codec import (
    DecodeFailure,
    Frame,
    FrameError,
    FrameType,
    StreamDecoder,
    cobs_decode,
    decode_frame,
    encode_frame,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_decode_message_never_crashes(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except MessageError:
        return
    assert decode_message(encode_message(msg)) == msg


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_stream_decoder_never_crashes(chunks: list[bytes]) -> None:
    decoder = StreamDecoder()
    for chunk in chunks:
        for item in decoder.feed(chunk):
            assert isinstance(item, Frame | DecodeFailure)


@FUZZ
@given(st.binary(max_size=64), st.sampled_from(list(FrameType)), st.integers(0, 255), st.binary(max_size=300))
def test_stream_decoder_recovers_after_garbage(garbage: bytes, ftype: FrameType, seq: int, payload: bytes) -> None:
    frame = Frame(ftype, seq, payload)
    decoder = StreamDecoder()
    out = decoder.feed(garbage + b"\x00" + encode_frame(frame))
    assert [i for i in out if isinstance(i, Frame)][-1] == frame


@FUZZ
@given(st.binary(max_size=300))
def test_frame_and_cobs_decoders(data: bytes) -> None:
    for fn in (decode_frame, cobs_decode):
        with contextlib.suppress(FrameError):
            fn(data)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_gvcp_decoders(data: bytes, extended: bool) -> None:
    for fn in (gvcp.decode_command, gvcp.decode_ack):
        with contextlib.suppress(gvcp.GvcpError):
            fn(data)
    for fn2 in (
        lambda d: gvcp.decode_resend(d, extended),
        gvcp.decode_discovery_ack,
        gvcp.decode_writereg,
        gvcp.decode_readmem,
        lambda d: gvcp.decode_u32_list(d, "x"),
        lambda d: gvcp.parse_xml_url(d.decode("latin-1")),
    ):
        with contextlib.suppress(gvcp.GvcpError):
            fn2(data)


@FUZZ
@given(st.binary(max_size=200))
def test_gvsp_decoders(data: bytes) -> None:
    try:
        header = gvsp.decode_header(data)
    except gvsp.GvspError:
        return
    for fn in (gvsp.decode_leader, gvsp.decode_trailer):
        with contextlib.suppress(gvsp.GvspError):
            fn(data, header)


@FUZZ
@given(st.binary(min_size=0, max_size=600), st.integers(1, 4), st.sampled_from([0x01100007, 0x010C0006, 0x010C0047]))
def test_line_record_decoder(data: bytes, n_lines: int, pixfmt: int) -> None:
    with contextlib.suppress(LineRecordError):
        decode_lines(np.frombuffer(data, dtype=np.uint8), np.ones(n_lines, dtype=bool), 4, pixfmt)


@FUZZ
@given(st.text(max_size=300))
def test_genicam_resolver(text: str) -> None:
    with contextlib.suppress(GenicamError):
        resolve_features(text)


_RECEIVER = GvspReceiver(payload_size=4000, packet_size=576, timing=ResendTiming(), resend_target=None)


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=10))
def test_gvsp_receiver_packet_handler(packets: list[bytes]) -> None:
    """The receive path itself (no socket needed): random datagrams never raise."""
    now = time.monotonic()
    for p in packets:
        buf = bytearray(65536)
        buf[: len(p)] = p
        _RECEIVER._on_packet(memoryview(buf), len(p), now)
    _RECEIVER._check(now + 1.0)


@FUZZ
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(-(10**6), 10**6), st.integers(0, 5), st.integers(1, 40)),
        max_size=30,
    )
)
def test_assembler_with_arbitrary_event_order(script: list[tuple[bool, int, int, int]]) -> None:
    asm = ParcelAssembler(AssemblerConfig(10.0, 1.6, 50.0, max_parcel_lines=64, buffer_lines=256))
    next_line = 0
    for is_edge, counts, gap, n in script:
        if is_edge:
            asm.feed_edge(counts % 2 == 0, counts, 0)
        else:
            next_line += gap
            k = np.arange(next_line, next_line + n, dtype=np.int64)
            block = LineBlock(
                np.zeros((n, 3), np.uint16), np.zeros((n, 3), np.uint16), next_line, k * 16, k, LineKind.SCAN
            )
            for parcel in asm.feed_block(block):
                assert parcel.high.shape[0] >= 1
                assert all(0 <= a < b <= parcel.n_lines for a, b in parcel.missing_lines)
            next_line += n
    for parcel in asm.flush():
        assert parcel.truncated or parcel.exit_encoder_counts is not None
