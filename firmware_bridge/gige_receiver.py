"""GVSP receiver with packet resend, and :class:`GigeLineSource`, the line runtime's scanner input.

One receiver thread per device owns the stream socket: it reassembles blocks from leader,
payload and trailer packets, requests missing packets with PACKETRESEND (Aravis's timing:
initial packet timeout, packet timeout between retries, frame retention), counts everything,
and hands closed frames, in block order, to a queue. :class:`GigeLineSource` decodes the
frames' dual-energy line records into :class:`~firmware_bridge.lines.LineBlock` objects.
"""

from __future__ import annotations

import logging
import math
import queue
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import numpy as np
import numpy.typing as npt

from firmware_bridge import gvcp, gvsp
from firmware_bridge.genicam import DevReg, GenicamError, resolve_features
from firmware_bridge.gige_client import GigeError, GvcpClient
from firmware_bridge.gvcp import Cmd, Reg
from firmware_bridge.line_records import (
    LineIndexUnwrapper,
    decode_lines,
    line_stride,
    n_channels_from_width,
    to_line_block,
)
from firmware_bridge.lines import LineBlock, LineKind

logger = logging.getLogger(__name__)

_STD_HEADER = struct.Struct(">HHI")


@dataclass(frozen=True, slots=True)
class ResendTiming:
    """Resend policy (defaults after Aravis: 1 ms initial, 20 ms between retries)."""

    initial_packet_timeout_s: float = 0.002
    packet_timeout_s: float = 0.020
    frame_retention_s: float = 0.250
    max_requests_per_packet: int = 3
    request_ratio: float = 2.0  # cap on requested packets per frame, as a multiple of its packet count
    enabled: bool = True


@dataclass(slots=True)
class ReceiverStats:
    packets_received: int = 0
    bytes_received: int = 0
    packets_duplicate: int = 0
    packets_resent_received: int = 0
    packets_late: int = 0
    packets_malformed: int = 0
    packets_unavailable: int = 0
    resend_requests: int = 0
    packets_requested: int = 0
    packets_missing: int = 0  # in frames that closed incomplete
    frames_complete: int = 0
    frames_incomplete: int = 0
    frames_lost: int = 0  # block IDs never seen at all
    frames_dropped_queue_full: int = 0


@dataclass(slots=True)
class RawFrame:
    """One closed GVSP block: the payload bytes that arrived and which packets they came from."""

    block_id: int
    leader: gvsp.Leader | None
    size_y: int | None
    payload: npt.NDArray[np.uint8]
    packet_ok: npt.NDArray[np.bool_]  # index = packet ID (0 leader, 1..n data, n+1 trailer)
    data_bytes_per_packet: int
    complete: bool

    def bytes_ok(self, start: int, stop: int) -> bool:
        """Whether every payload byte in ``[start, stop)`` arrived."""
        if stop <= start:
            return True
        p0 = start // self.data_bytes_per_packet + 1
        p1 = (stop - 1) // self.data_bytes_per_packet + 1
        if p1 >= self.packet_ok.shape[0] - 1:
            return False
        return bool(self.packet_ok[p0 : p1 + 1].all())

    def lines_ok(self, stride: int, n_lines: int) -> npt.NDArray[np.bool_]:
        """Per line record of ``stride`` bytes: did all of its bytes arrive?"""
        dpp = self.data_bytes_per_packet
        starts = np.arange(n_lines, dtype=np.int64) * stride
        p0 = starts // dpp + 1
        p1 = (starts + stride - 1) // dpp + 1
        n_data = self.packet_ok.shape[0] - 2
        missing = np.concatenate([[0], np.cumsum(~self.packet_ok[: n_data + 1])])
        ok = (p1 <= n_data) & (missing[np.minimum(p1, n_data) + 1] - missing[p0] == 0)
        return np.asarray(ok, dtype=np.bool_)


@dataclass(slots=True)
class _Frame:
    block_id: int
    buffer: bytearray
    got: bytearray
    n_packets: int  # expected packet IDs 0..n_packets-1 (trailer last)
    first_seen: float
    last_seen: float
    leader: gvsp.Leader | None = None
    size_y: int | None = None
    trailer_seen: bool = False
    received: int = 0
    highest: int = -1
    next_ask: dict[int, float] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    requested_total: int = 0
    unavailable: bool = False
    superseded: bool = False


class GvspReceiver:
    """Receives one GVSP stream on a UDP socket; closed frames come out of :meth:`get_frame` in block order."""

    def __init__(
        self,
        *,
        payload_size: int,
        packet_size: int,
        extended_ids: bool = False,
        bind_host: str = "127.0.0.1",
        bind_port: int = 0,
        timing: ResendTiming | None = None,
        resend_target: tuple[str, int] | None = None,
        stream_channel: int = 0,
        queue_frames: int = 256,
        rcvbuf_bytes: int = 8 << 20,
    ) -> None:
        self.payload_size = payload_size
        self.extended = extended_ids
        self.dpp = gvsp.data_bytes_per_packet(packet_size, extended_ids)
        self.n_data_max = math.ceil(payload_size / self.dpp)
        self.timing = timing or ResendTiming()
        self.stats = ReceiverStats()
        self.stream_channel = stream_channel
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        self._sock.bind((bind_host, bind_port))
        self._gvcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._resend_target = resend_target
        self._frames: dict[int, _Frame] = {}
        self._closed: set[int] = set()
        self._closed_order: deque[int] = deque()
        self._ready: dict[int, RawFrame] = {}
        self._next_deliver: int | None = None
        self._last_wire_id: int | None = None
        self._newest: int | None = None
        self._queue: queue.Queue[RawFrame] = queue.Queue(maxsize=queue_frames)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resend_req_id = 0

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"gvsp-rx-{self.port}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._sock.close()
        self._gvcp_sock.close()

    def get_frame(self, timeout_s: float) -> RawFrame | None:
        try:
            return self._queue.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return None

    # ---- receive loop ---------------------------------------------------------------------------
    def _unwrap(self, wire_id: int) -> int:
        if self.extended:
            return wire_id
        if self._last_wire_id is None or self._newest is None:
            return wire_id
        return self._newest + gvsp.block_id_delta(wire_id, self._last_wire_id)

    def _run(self) -> None:
        buf = bytearray(65536)
        view = memoryview(buf)
        sock = self._sock
        sock.setblocking(False)
        next_check = time.monotonic()
        check_period = min(self.timing.initial_packet_timeout_s, 0.002)
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                self._check(now)
                next_check = now + check_period
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                timeout = 0.05 if not self._frames else max(0.0, next_check - time.monotonic())
                select.select([sock], [], [], timeout)
                continue
            except OSError as e:
                if not self._stop.is_set():
                    logger.error("GVSP socket error: %s", e)
                break
            self._on_packet(view, n, now)

    def _on_packet(self, view: memoryview, n: int, now: float) -> None:
        st = self.stats
        if n < 8:
            st.packets_malformed += 1
            return
        status, block16, word = _STD_HEADER.unpack_from(view, 0)
        if word & 0x80000000:
            if n < 20:
                st.packets_malformed += 1
                return
            wire_block, pid = struct.unpack_from(">QI", view, 8)
            hsize = 20
        else:
            wire_block, pid = block16, word & 0xFFFFFF
            hsize = 8
            if block16 == 0:
                st.packets_malformed += 1
                return
        fmt = (word >> 24) & 0x7F
        if status not in (0, gvcp.Status.RESENT_PACKET):
            if status in gvcp.UNAVAILABLE_STATUSES:
                st.packets_unavailable += 1
                frame = self._frames.get(self._unwrap(wire_block))
                if frame is not None:
                    frame.unavailable = True
            else:
                st.packets_malformed += 1
            return
        block_id = self._unwrap(wire_block)
        frame = self._frames.get(block_id)
        if frame is None:
            if (self._next_deliver is not None and block_id < self._next_deliver) or block_id in self._closed:
                st.packets_late += 1  # a straggler (duplicate or late resend) of a frame already closed
                return
            frame = self._open_frame(block_id, now)
            if block_id == self._newest:
                self._last_wire_id = wire_block
        st.packets_received += 1
        st.bytes_received += n
        if pid >= frame.n_packets and fmt != gvsp.ContentFormat.TRAILER:
            st.packets_malformed += 1
            return
        if fmt == gvsp.ContentFormat.TRAILER and pid >= len(frame.got):
            st.packets_malformed += 1
            return
        if frame.got[pid]:
            st.packets_duplicate += 1
            return
        if status == gvcp.Status.RESENT_PACKET:
            st.packets_resent_received += 1
        if fmt == gvsp.ContentFormat.PAYLOAD:
            off = (pid - 1) * self.dpp
            size = n - hsize
            if off + size > len(frame.buffer) or pid == 0:
                st.packets_malformed += 1
                return
            frame.buffer[off : off + size] = view[hsize:n]
        elif fmt == gvsp.ContentFormat.LEADER:
            try:
                frame.leader = gvsp.decode_leader(bytes(view[:n]), gvsp.decode_header(bytes(view[:n])))
            except gvsp.GvspError:
                st.packets_malformed += 1
                return
        elif fmt == gvsp.ContentFormat.TRAILER:
            try:
                frame.size_y = gvsp.decode_trailer(bytes(view[:n]), gvsp.decode_header(bytes(view[:n]))).size_y
            except gvsp.GvspError:
                st.packets_malformed += 1
                return
            frame.trailer_seen = True
            frame.n_packets = pid + 1  # partial frames end early
        else:
            st.packets_malformed += 1
            return
        frame.got[pid] = 1
        frame.received += 1
        frame.last_seen = now
        if pid > frame.highest:
            frame.highest = pid
        if frame.trailer_seen and frame.received >= frame.n_packets and all(frame.got[: frame.n_packets]):
            self._close(frame, complete=True)

    def _open_frame(self, block_id: int, now: float) -> _Frame:
        n_packets = self.n_data_max + 2
        frame = _Frame(block_id, bytearray(self.n_data_max * self.dpp), bytearray(n_packets), n_packets, now, now)
        self._frames[block_id] = frame
        if self._newest is None or block_id > self._newest:
            previous = self._newest
            self._newest = block_id
            for f in self._frames.values():
                if f.block_id < block_id:
                    f.superseded = True
            if previous is not None and block_id - previous > 1:
                gap = block_id - previous - 1
                if gap <= 64 and self.timing.enabled:
                    # whole blocks missing: open them so their packets get requested
                    for missing in range(previous + 1, block_id):
                        if missing not in self._frames and missing not in self._closed:
                            f = _Frame(
                                missing,
                                bytearray(self.n_data_max * self.dpp),
                                bytearray(n_packets),
                                n_packets,
                                now,
                                now,
                            )
                            f.superseded = True
                            self._frames[missing] = f
                else:
                    self.stats.frames_lost += gap
        if self._next_deliver is None:
            self._next_deliver = block_id
        return frame

    def _check(self, now: float) -> None:
        t = self.timing
        for frame in list(self._frames.values()):
            if now - frame.first_seen > t.frame_retention_s or (frame.unavailable and not t.enabled):
                self._close(frame, complete=False)
                continue
            if not t.enabled:
                if frame.superseded and now - frame.last_seen > t.packet_timeout_s:
                    self._close(frame, complete=False)
                continue
            # gaps below the highest packet seen are due after the initial timeout; the tail of a
            # frame only once a newer frame started or the frame went quiet for a packet timeout
            idle = now - frame.last_seen > t.packet_timeout_s
            limit = frame.n_packets if (frame.superseded or idle) else frame.highest
            if limit <= 0:
                continue
            got = np.frombuffer(frame.got, dtype=np.uint8, count=limit)
            missing = np.flatnonzero(got == 0)
            if missing.size == 0:
                continue
            due: list[int] = []
            exhausted = True
            for pid in missing.tolist():
                asks = frame.asks.get(pid, 0)
                if asks >= t.max_requests_per_packet:
                    continue
                exhausted = False
                when = frame.next_ask.get(pid)
                if when is None:
                    frame.next_ask[pid] = now + (0.0 if idle else t.initial_packet_timeout_s)
                    if idle:
                        due.append(pid)
                elif now >= when:
                    due.append(pid)
            if frame.unavailable or (
                exhausted and (frame.superseded or idle) and now - frame.last_seen > t.packet_timeout_s
            ):
                self._close(frame, complete=False)
                continue
            budget = int(t.request_ratio * frame.n_packets) - frame.requested_total
            if due and budget > 0:
                self._request(frame, due[:budget], now)

    def _request(self, frame: _Frame, pids: list[int], now: float) -> None:
        if self._resend_target is None:
            return
        ranges: list[tuple[int, int]] = []
        for pid in pids:
            if ranges and ranges[-1][1] == pid - 1:
                ranges[-1] = (ranges[-1][0], pid)
            else:
                ranges.append((pid, pid))
            frame.asks[pid] = frame.asks.get(pid, 0) + 1
            frame.next_ask[pid] = now + self.timing.packet_timeout_s
        frame.requested_total += len(pids)
        wire_block = frame.block_id if self.extended else ((frame.block_id - 1) % 0xFFFF) + 1
        for first, last in ranges:
            req = gvcp.ResendRequest(self.stream_channel, wire_block, first, last, self.extended)
            self._resend_req_id = 1 if self._resend_req_id >= 0xFFFF else self._resend_req_id + 1
            flags = gvcp.FLAG_EXTENDED_ID if self.extended else 0
            packet = gvcp.encode_command(Cmd.PACKETRESEND, gvcp.encode_resend(req), self._resend_req_id, flags)
            try:
                self._gvcp_sock.sendto(packet, self._resend_target)
            except OSError as e:
                logger.warning("cannot send PACKETRESEND: %s", e)
                return
            self.stats.resend_requests += 1
            self.stats.packets_requested += last - first + 1

    def _close(self, frame: _Frame, complete: bool) -> None:
        self._frames.pop(frame.block_id, None)
        self._closed.add(frame.block_id)
        self._closed_order.append(frame.block_id)
        if len(self._closed_order) > 4096:
            self._closed.discard(self._closed_order.popleft())
        ok = np.frombuffer(bytes(frame.got[: frame.n_packets]), dtype=np.uint8).astype(bool)
        if not complete:
            complete = bool(frame.trailer_seen and ok.all())
        if complete:
            self.stats.frames_complete += 1
        else:
            if frame.received == 0:
                self.stats.frames_lost += 1
            else:
                self.stats.frames_incomplete += 1
            self.stats.packets_missing += int((~ok).sum())
        if frame.received:
            self._ready[frame.block_id] = RawFrame(
                frame.block_id,
                frame.leader,
                frame.size_y,
                np.frombuffer(frame.buffer, dtype=np.uint8),
                ok,
                self.dpp,
                complete,
            )
        else:
            self._ready[frame.block_id] = RawFrame(
                frame.block_id, None, None, np.zeros(0, dtype=np.uint8), ok, self.dpp, False
            )
        self._deliver()

    def _deliver(self) -> None:
        """Hand closed frames out in block order: the oldest closed frame goes once no older frame is open."""
        while self._ready:
            first = min(self._ready)
            if self._frames and min(self._frames) < first:
                return
            raw = self._ready.pop(first)
            self._next_deliver = first + 1
            if raw.payload.size == 0:
                continue
            try:
                self._queue.put_nowait(raw)
            except queue.Full:
                self.stats.frames_dropped_queue_full += 1


@dataclass(slots=True)
class LineSourceStats:
    blocks_out: int = 0
    lines_out: int = 0
    lines_lost: int = 0
    lines_bad_header: int = 0
    reference_blocks_out: int = 0


def parse_gige_url(url: str) -> tuple[str, int, dict[str, str]]:
    """``gige://host[:port][?packet_size=8192&extended_ids=1&lines_per_block=32]``."""
    u = urlparse(url)
    if u.scheme != "gige" or not u.hostname:
        raise ValueError(f"not a GigE Vision URL: {url!r} (expected gige://host[:port][?options])")
    options = {k: v[-1] for k, v in parse_qs(u.query).items()}
    return u.hostname, u.port or gvcp.GVCP_PORT, options


class GigeLineSource:
    """Dual-energy line blocks from one GigE Vision scanner (implements ``smartscreen.domain.ports.LineSource``).

    Connects over GVCP, takes control, configures the stream channel to a local receiver,
    keeps control with a heartbeat, starts acquisition and decodes frames into
    :class:`LineBlock` objects (scan, dark and air reference lines). Lines that did not
    arrive are left out; the gap in line indices tells the assembler exactly what is missing.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int = gvcp.GVCP_PORT,
        packet_size: int = 8192,
        extended_ids: bool = False,
        lines_per_block: int | None = None,
        pixel_format: int | None = None,
        timing: ResendTiming | None = None,
        bind_host: str | None = None,
        heartbeat_period_s: float | None = None,
        start: bool = True,
    ) -> None:
        if url is not None:
            host, port, options = parse_gige_url(url)
            packet_size = int(options.get("packet_size", packet_size))
            extended_ids = options.get("extended_ids", "1" if extended_ids else "0") in ("1", "true", "yes")
            if "lines_per_block" in options:
                lines_per_block = int(options["lines_per_block"])
        if host is None:
            raise ValueError("GigeLineSource needs a url or a host")
        self.stats = LineSourceStats()
        self._client = GvcpClient(host, port)
        self._unwrappers = {kind: LineIndexUnwrapper() for kind in LineKind}
        self._pending: list[LineBlock] = []
        self._closed = False
        try:
            xml = self._client.read_xml()
            self.features = resolve_features(xml)
        except (GigeError, GenicamError, ValueError) as e:
            self._client.close()
            raise GigeError(f"cannot read the GenICam description of {host}:{port}: {e}") from e
        try:
            self._client.take_control()
            if lines_per_block is not None:
                self._client.write_register(self._feature("Height", DevReg.HEIGHT), lines_per_block)
            if pixel_format is not None:
                self._client.write_register(self._feature("PixelFormat", DevReg.PIXEL_FORMAT), pixel_format)
            self._client.write_register(
                self._feature("GevGVSPExtendedIDMode", DevReg.EXTENDED_ID_MODE), int(extended_ids)
            )
            self._client.write_register(Reg.SCPS0, packet_size)
            width, height, pixfmt, payload = (
                self._client.read_register(self._feature("Width", DevReg.WIDTH)),
                self._client.read_register(self._feature("Height", DevReg.HEIGHT)),
                self._client.read_register(self._feature("PixelFormat", DevReg.PIXEL_FORMAT)),
                self._client.read_register(self._feature("PayloadSize", DevReg.PAYLOAD_SIZE)),
            )
            self.n_channels = n_channels_from_width(width, pixfmt)
            self.lines_per_block = height
            self.pixel_format = pixfmt
            self.stride = line_stride(self.n_channels, pixfmt)
            self.line_rate_hz = self._client.read_float(self._feature("AcquisitionLineRate", DevReg.LINE_RATE))
            local_ip = bind_host or self._client.local_ip
            self._receiver = GvspReceiver(
                payload_size=payload,
                packet_size=packet_size,
                extended_ids=extended_ids,
                bind_host=local_ip,
                timing=timing,
                resend_target=(host, port),
            )
            self._receiver.start()
            self._client.write_registers(
                [
                    (Reg.SCDA0, struct.unpack(">I", socket.inet_aton(local_ip))[0]),
                    (Reg.SCP0, self._receiver.port),
                ]
            )
            self._client.start_heartbeat(heartbeat_period_s)
            if start:
                self.start_acquisition()
        except Exception:
            self._client.close()
            raise

    def _feature(self, name: str, default: int) -> int:
        reg = self.features.get(name)
        return reg.address if reg is not None else int(default)

    # ---- control --------------------------------------------------------------------------------
    def _command(self, name: str, default: int) -> None:
        reg = self.features.get(name)
        value = reg.command_value if reg is not None and reg.command_value is not None else 1
        self._client.write_register(reg.address if reg is not None else int(default), value)

    def start_acquisition(self) -> None:
        self._command("AcquisitionStart", DevReg.ACQUISITION_START)

    def stop_acquisition(self) -> None:
        self._command("AcquisitionStop", DevReg.ACQUISITION_STOP)

    def request_references(self) -> None:
        """Ask the scanner to send dark and air reference lines again."""
        self._command("CalibrationRequest", DevReg.CALIBRATION_REQUEST)

    @property
    def receiver_stats(self) -> ReceiverStats:
        return self._receiver.stats

    @property
    def control_lost(self) -> bool:
        return self._client.control_lost

    # counters the line runtime reads
    @property
    def frames_complete(self) -> int:
        return self._receiver.stats.frames_complete

    @property
    def frames_incomplete(self) -> int:
        return self._receiver.stats.frames_incomplete + self._receiver.stats.frames_lost

    @property
    def resends(self) -> int:
        return self._receiver.stats.resend_requests

    @property
    def packets_lost(self) -> int:
        return self._receiver.stats.packets_missing

    # ---- LineSource ------------------------------------------------------------------------------
    def read_block(self, timeout_s: float) -> LineBlock | None:
        """The next block of lines (scan or reference), or None when nothing arrived within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            raw = self._receiver.get_frame(deadline - time.monotonic())
            if raw is None:
                return None
            self._decode(raw)
        block = self._pending.pop(0)
        self.stats.blocks_out += 1
        self.stats.lines_out += block.n_lines
        if block.kind is not LineKind.SCAN:
            self.stats.reference_blocks_out += 1
        return block

    def _decode(self, raw: RawFrame) -> None:
        pixfmt = raw.leader.pixel_format if raw.leader is not None else self.pixel_format
        height = raw.leader.height if raw.leader is not None else self.lines_per_block
        n_lines = min(raw.size_y if raw.size_y is not None else height, height)
        ok = raw.lines_ok(self.stride, n_lines) if not raw.complete else np.ones(n_lines, dtype=bool)
        runs, bad = decode_lines(raw.payload, ok, self.n_channels, pixfmt)
        self.stats.lines_bad_header += bad
        if not raw.complete:
            self.stats.lines_lost += int(n_lines - sum(r.high.shape[0] for r in runs))
        for run in runs:
            self._pending.append(to_line_block(run, self._unwrappers[run.kind]))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stop_acquisition()
            self._client.release_control()
        except GigeError as e:
            logger.warning("could not stop the scanner cleanly: %s", e)
        self._client.close()
        self._receiver.stop()

    def __enter__(self) -> GigeLineSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
