"""Dual-energy line-scan scanner emulator: a GigE Vision device on real loopback UDP sockets.

Serves GVCP (discovery, READREG/WRITEREG, READMEM/WRITEMEM, control privilege with heartbeat
timeout, PACKETRESEND in standard and extended form) and streams the belt plan as GVSP blocks
of dual-energy line records at the plan's line rate. Fault injection (seeded): packet loss,
reordering, duplication. Dark and air reference lines are sent at acquisition start and on
``CalibrationRequest``. One GVCP thread and one streaming thread per emulator.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge import gvcp, gvsp
from firmware_bridge.belt_clock import BeltClock
from firmware_bridge.belt_plan import BeltPlan
from firmware_bridge.genicam import XML_ADDRESS, XML_FILENAME, DevReg, scanner_xml
from firmware_bridge.gvcp import Cmd, Reg, Status
from firmware_bridge.line_records import SUPPORTED_FORMATS, encode_lines, image_width_px, line_stride
from firmware_bridge.lines import LineKind

logger = logging.getLogger(__name__)

DEFAULT_START_BLOCK_ID = 0xFF79  # close to the 16-bit wrap, as Aravis's fake camera does
EXTENDED_START_BLOCK_ID = 0xFFFFFFFF - 4  # crosses 32 bits early in extended-ID mode


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Stream faults, as probabilities per packet (resent packets are subject to the same loss)."""

    loss: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    seed: int = 0
    drop_blocks: frozenset[int] = frozenset()  # block sequence numbers (0-based, scan blocks) never sent

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")


@dataclass(slots=True)
class ScannerCounters:
    blocks_sent: int = 0
    packets_sent: int = 0
    packets_dropped: int = 0
    packets_duplicated: int = 0
    packets_reordered: int = 0
    resend_requests: int = 0
    packets_resent: int = 0
    packets_unavailable: int = 0
    lines_sent: int = 0
    reference_blocks_sent: int = 0
    control_timeouts: int = 0


class ScannerEmulator:
    """A GigE Vision dual-energy line-scan scanner on ``host``:``gvcp_port`` (0 = ephemeral)."""

    def __init__(
        self,
        plan: BeltPlan,
        *,
        host: str = "127.0.0.1",
        gvcp_port: int = 0,
        lines_per_block: int = 32,
        pixel_format: int = gvsp.PixelFormat.MONO16,
        faults: FaultConfig | None = None,
        clock: BeltClock | None = None,
        repeat: bool = False,
        heartbeat_timeout_ms: int = 3000,
        slow_command_ms: int = 0,
        retention_blocks: int = 256,
        serial: str = "SSEMU0001",
        start_block_id: int = DEFAULT_START_BLOCK_ID,
    ) -> None:
        if pixel_format not in SUPPORTED_FORMATS:
            raise ValueError(f"pixel format 0x{pixel_format:08X} not supported")
        self.plan = plan
        self.clock = clock or BeltClock()
        self.faults = faults or FaultConfig()
        self.repeat = repeat
        self.counters = ScannerCounters()
        self._rng = random.Random(self.faults.seed)
        self._host = host
        self._gvcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._gvcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._gvcp.bind((host, gvcp_port))
        self._stream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self._stream.bind((host, 0))
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._retention: OrderedDict[int, list[bytes]] = OrderedDict()
        self._retention_blocks = retention_blocks
        self._ack_cache: dict[tuple[tuple[str, int], int], bytes] = {}
        self._controller: tuple[str, int] | None = None
        self._last_controller_traffic = 0.0
        self._streaming = threading.Event()
        self._calibration_pending = threading.Event()
        self._start_block_id = start_block_id
        self._slow_command_ms = slow_command_ms
        self._pending: set[tuple[tuple[str, int], int]] = set()
        self._held_packet: bytes | None = None
        self.xml = scanner_xml().encode("utf-8")
        self._regs: dict[int, int] = {
            Reg.VERSION: (2 << 16) | 0,
            Reg.DEVICE_MODE: 0x80000001,
            Reg.MAC_HIGH: 0x0000_02AB,
            Reg.MAC_LOW: 0xCD00_0001,
            Reg.CURRENT_IP: struct.unpack(">I", socket.inet_aton(host))[0],
            Reg.N_INTERFACES: 1,
            Reg.N_MESSAGE_CHANNELS: 0,
            Reg.N_STREAM_CHANNELS: 1,
            Reg.GVCP_CAPABILITY: gvcp.CAP_WRITEMEM | gvcp.CAP_PACKETRESEND | gvcp.CAP_PENDING_ACK,
            Reg.HEARTBEAT_TIMEOUT: heartbeat_timeout_ms,
            Reg.TICK_FREQ_HIGH: 0,
            Reg.TICK_FREQ_LOW: 1_000_000_000,
            Reg.GVCP_CONFIG: 0,
            Reg.CCP: 0,
            Reg.SCP0: 0,
            Reg.SCPS0: 1500,
            Reg.SCPD0: 0,
            Reg.SCDA0: 0,
            Reg.SCSP0: self._stream.getsockname()[1],
            DevReg.HEIGHT: lines_per_block,
            DevReg.PIXEL_FORMAT: pixel_format,
            DevReg.ACQUISITION_MODE: 0,
            DevReg.LINE_RATE: struct.unpack(">I", struct.pack(">f", plan.line_rate_hz))[0],
            DevReg.BELT_SPEED_MM_S: struct.unpack(">I", struct.pack(">f", plan.belt_speed_mm_s))[0],
            DevReg.CHANNEL_COUNT: plan.n_channels,
            DevReg.ENCODER_COUNTS_PER_M: round(plan.encoder_counts_per_mm * 1000),
            DevReg.LINE_PITCH_UM: round(plan.line_pitch_mm * 1000),
            DevReg.EXTENDED_ID_MODE: 0,
            DevReg.TL_PARAMS_LOCKED: 0,
            DevReg.ACQUISITION_STATUS: 0,
        }
        self._memory = bytearray(0x1000)
        self._strings = {
            Reg.MANUFACTURER: ("smartscreen", 32),
            Reg.MODEL: ("DualEnergyLineScan", 32),
            Reg.DEVICE_VERSION: ("1.0", 32),
            Reg.MANUFACTURER_INFO: ("firmware_bridge scanner emulator", 48),
            Reg.SERIAL: (serial, 16),
            Reg.USER_NAME: ("xray-scanner", 16),
            Reg.XML_URL_0: (f"Local:{XML_FILENAME};{XML_ADDRESS:x};{len(self.xml):x}", 512),
            Reg.XML_URL_1: ("", 512),
        }
        for addr, (text, size) in self._strings.items():
            raw = text.encode("ascii")[: size - 1]
            self._memory[addr : addr + size] = raw + bytes(size - len(raw))
        for reg_addr, value in self._regs.items():
            if reg_addr < len(self._memory) - 4:
                self._memory[reg_addr : reg_addr + 4] = struct.pack(">I", value)

    # ---- lifecycle ------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the GVCP control channel."""
        host, port = self._gvcp.getsockname()
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"gige://{host}:{port}"

    @property
    def lines_per_block(self) -> int:
        return self._regs[DevReg.HEIGHT]

    @property
    def pixel_format(self) -> int:
        return self._regs[DevReg.PIXEL_FORMAT]

    @property
    def payload_size(self) -> int:
        return self.lines_per_block * line_stride(self.plan.n_channels, self.pixel_format)

    @property
    def streaming(self) -> bool:
        return self._streaming.is_set()

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for target, name in ((self._gvcp_loop, "gvcp"), (self._stream_loop, "gvsp")):
            t = threading.Thread(target=target, name=f"scanner-emu-{name}-{self.address[1]}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._streaming.clear()
        for t in self._threads:
            t.join(timeout=3)
        self._threads.clear()
        self._gvcp.close()
        self._stream.close()

    def __enter__(self) -> ScannerEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request_references(self) -> None:
        """Send dark and air reference lines again (as a CalibrationRequest does)."""
        self._calibration_pending.set()

    # ---- GVCP -----------------------------------------------------------------------------------
    def _read_reg(self, addr: int) -> tuple[int, int]:
        if addr == DevReg.WIDTH:
            return Status.SUCCESS, image_width_px(self.plan.n_channels, self.pixel_format)
        if addr == DevReg.PAYLOAD_SIZE:
            return Status.SUCCESS, self.payload_size
        if addr == DevReg.ACQUISITION_STATUS:
            return Status.SUCCESS, int(self.streaming)
        if addr in self._regs:
            return Status.SUCCESS, self._regs[addr]
        if addr % 4:
            return Status.BAD_ALIGNMENT, 0
        if 0 <= addr < len(self._memory) - 4:
            return Status.SUCCESS, struct.unpack_from(">I", self._memory, addr)[0]
        return Status.INVALID_ADDRESS, 0

    def _write_reg(self, addr: int, value: int, peer: tuple[str, int]) -> int:
        if addr % 4:
            return Status.BAD_ALIGNMENT
        if addr == Reg.CCP:
            if self._controller is not None and self._controller != peer and self._regs[Reg.CCP] & 0x3:
                return Status.ACCESS_DENIED
            self._regs[Reg.CCP] = value & 0x3
            self._controller = peer if value & 0x3 else None
            self._last_controller_traffic = time.monotonic()
            if not value & 0x3:
                self._streaming.clear()
            return Status.SUCCESS
        if self._controller is not None and peer != self._controller:
            return Status.ACCESS_DENIED
        if addr in (DevReg.WIDTH, DevReg.PAYLOAD_SIZE, DevReg.LINE_RATE, DevReg.CHANNEL_COUNT, Reg.VERSION):
            return Status.WRITE_PROTECT
        if addr == DevReg.ACQUISITION_START:
            if value:
                self._start_acquisition()
            return Status.SUCCESS
        if addr == DevReg.ACQUISITION_STOP:
            if value:
                self._streaming.clear()
                self._regs[DevReg.TL_PARAMS_LOCKED] = 0
            return Status.SUCCESS
        if addr == DevReg.CALIBRATION_REQUEST:
            if value:
                self._calibration_pending.set()
            return Status.SUCCESS
        if addr == DevReg.PIXEL_FORMAT and value not in SUPPORTED_FORMATS:
            return Status.INVALID_PARAMETER
        if addr == DevReg.HEIGHT and not 1 <= value <= 4096:
            return Status.INVALID_PARAMETER
        if addr in (DevReg.PIXEL_FORMAT, DevReg.HEIGHT, DevReg.EXTENDED_ID_MODE) and self.streaming:
            return Status.BUSY
        if addr == Reg.SCPS0:
            size = value & 0xFFFF
            if not 576 <= size <= 16384:
                return Status.INVALID_PARAMETER
            value = size
        if addr in self._regs:
            self._regs[addr] = value
            return Status.SUCCESS
        return Status.INVALID_ADDRESS

    def _start_acquisition(self) -> None:
        self._regs[DevReg.TL_PARAMS_LOCKED] = 1
        self._calibration_pending.set()
        self._streaming.set()

    def _handle(self, data: bytes, peer: tuple[str, int]) -> bytes | None:
        try:
            header, payload = gvcp.decode_command(data)
        except gvcp.GvcpError as e:
            logger.debug("scanner emulator: bad GVCP packet from %s: %s", peer, e)
            return None
        cmd = header.command
        if cmd == Cmd.PACKETRESEND:
            try:
                req = gvcp.decode_resend(payload, bool(header.flags & gvcp.FLAG_EXTENDED_ID))
            except gvcp.GvcpError as e:
                logger.debug("scanner emulator: bad PACKETRESEND: %s", e)
                return None
            self._resend(req)
            return None
        if peer == self._controller:
            self._last_controller_traffic = time.monotonic()
        key = (peer, header.req_id)
        if cmd != Cmd.DISCOVERY and key in self._ack_cache:
            return self._ack_cache[key]  # retransmitted request: answer again, do not apply twice
        if self._slow_command_ms and cmd == Cmd.WRITEREG and self._is_slow(payload):
            return self._defer(header.req_id, payload, peer, key)
        status: int = Status.SUCCESS
        body = b""
        try:
            if cmd == Cmd.DISCOVERY:
                body = bytes(self._memory[: gvcp.DISCOVERY_ACK_SIZE])
            elif cmd == Cmd.READREG:
                values = []
                for addr in gvcp.decode_u32_list(payload, "READREG"):
                    status, v = self._read_reg(addr)
                    if status:
                        break
                    values.append(v)
                body = gvcp.encode_readreg(values)
            elif cmd == Cmd.WRITEREG:
                n = 0
                for addr, value in gvcp.decode_writereg(payload):
                    status = self._write_reg(addr, value, peer)
                    if status:
                        break
                    n += 1
                body = struct.pack(">HH", 0, n)
            elif cmd == Cmd.READMEM:
                addr, count = gvcp.decode_readmem(payload)
                if count % 4 or count > gvcp.MAX_READMEM:
                    status = Status.INVALID_PARAMETER
                else:
                    body = struct.pack(">I", addr) + self._read_mem(addr, count)
            elif cmd == Cmd.WRITEMEM:
                if len(payload) < 8 or (len(payload) - 4) % 4:
                    status = Status.INVALID_PARAMETER
                else:
                    (addr,) = struct.unpack_from(">I", payload, 0)
                    status = self._write_mem(addr, payload[4:], peer)
                    body = struct.pack(">HH", 0, len(payload) - 4)
            else:
                status = Status.NOT_IMPLEMENTED
        except (gvcp.GvcpError, ValueError) as e:
            logger.debug("scanner emulator: invalid %s from %s: %s", cmd, peer, e)
            status = Status.INVALID_PARAMETER
        if status:
            body = b""
        ack = gvcp.encode_ack(status, cmd + 1, body, header.req_id)
        if cmd != Cmd.DISCOVERY:
            if len(self._ack_cache) > 256:
                self._ack_cache.clear()
            self._ack_cache[key] = ack
        return ack if header.flags & gvcp.FLAG_ACK_REQUIRED else None

    def _is_slow(self, payload: bytes) -> bool:
        try:
            return any(a == DevReg.CALIBRATION_REQUEST for a, _ in gvcp.decode_writereg(payload))
        except gvcp.GvcpError:
            return False

    def _defer(self, req_id: int, payload: bytes, peer: tuple[str, int], key: tuple[tuple[str, int], int]) -> bytes:
        """A slow operation: answer PENDING_ACK now, apply it and send the real ACK later."""
        pending = gvcp.encode_ack(0, Cmd.PENDING_ACK, struct.pack(">HH", 0, self._slow_command_ms), req_id)
        if key in self._pending:
            return pending
        self._pending.add(key)

        def finish() -> None:
            with self._lock:
                n = 0
                status: int = Status.SUCCESS
                for addr, value in gvcp.decode_writereg(payload):
                    status = self._write_reg(addr, value, peer)
                    if status:
                        break
                    n += 1
                ack = gvcp.encode_ack(status, Cmd.WRITEREG + 1, struct.pack(">HH", 0, n) if not status else b"", req_id)
                self._ack_cache[key] = ack
                self._pending.discard(key)
            try:
                self._gvcp.sendto(ack, peer)
            except OSError as e:
                logger.warning("scanner emulator cannot answer %s: %s", peer, e)

        timer = threading.Timer(self._slow_command_ms / 1000, finish)
        timer.daemon = True
        timer.start()
        return pending

    def _read_mem(self, addr: int, count: int) -> bytes:
        if XML_ADDRESS <= addr < XML_ADDRESS + len(self.xml) + gvcp.MAX_READMEM:
            chunk = self.xml[addr - XML_ADDRESS : addr - XML_ADDRESS + count]
            return chunk + bytes(count - len(chunk))
        if addr % 4:
            raise ValueError("unaligned READMEM")
        out = bytearray()
        for a in range(addr, addr + count, 4):
            status, v = self._read_reg(a)
            if status:
                raise ValueError(f"READMEM of unmapped address 0x{a:X}")
            out += struct.pack(">I", v)
        return bytes(out)

    def _write_mem(self, addr: int, data: bytes, peer: tuple[str, int]) -> int:
        for i in range(0, len(data), 4):
            (value,) = struct.unpack_from(">I", data, i)
            status = self._write_reg(addr + i, value, peer)
            if status:
                return status
        return Status.SUCCESS

    def _gvcp_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._gvcp], [], [], 0.05)
            self._check_heartbeat()
            if not ready:
                continue
            try:
                data, peer = self._gvcp.recvfrom(4096)
            except OSError as e:
                if not self._stop.is_set():
                    logger.warning("scanner emulator GVCP socket error: %s", e)
                continue
            with self._lock:
                answer = self._handle(data, (str(peer[0]), int(peer[1])))
            if answer is not None:
                try:
                    self._gvcp.sendto(answer, peer)
                except OSError as e:
                    logger.warning("scanner emulator cannot answer %s: %s", peer, e)

    def _check_heartbeat(self) -> None:
        if self._controller is None:
            return
        timeout_s = self._regs[Reg.HEARTBEAT_TIMEOUT] / 1000
        if time.monotonic() - self._last_controller_traffic > timeout_s:
            logger.warning(
                "scanner emulator: controller %s silent for %.1f s, dropping control", self._controller, timeout_s
            )
            self.counters.control_timeouts += 1
            with self._lock:
                self._controller = None
                self._regs[Reg.CCP] = 0
                self._streaming.clear()

    # ---- GVSP -----------------------------------------------------------------------------------
    def _destination(self) -> tuple[str, int] | None:
        port = self._regs[Reg.SCP0] & 0xFFFF
        ip = self._regs[Reg.SCDA0]
        if not port or not ip:
            return None
        return socket.inet_ntoa(struct.pack(">I", ip)), port

    def _emit(self, packet: bytes, dest: tuple[str, int], resend: bool = False) -> None:
        f = self.faults
        if f.loss and self._rng.random() < f.loss:
            self.counters.packets_dropped += 1
            return
        out = [packet]
        if not resend and f.duplicate and self._rng.random() < f.duplicate:
            out.append(packet)
            self.counters.packets_duplicated += 1
        if not resend and f.reorder:
            if self._held_packet is not None:
                out.append(self._held_packet)
                self._held_packet = None
            elif self._rng.random() < f.reorder:
                self._held_packet = packet
                self.counters.packets_reordered += 1
                return
        for p in out:
            try:
                self._stream.sendto(p, dest)
                self.counters.packets_sent += 1
            except OSError as e:
                logger.debug("scanner emulator: send failed: %s", e)

    def _flush_held(self, dest: tuple[str, int]) -> None:
        if self._held_packet is not None:
            p, self._held_packet = self._held_packet, None
            try:
                self._stream.sendto(p, dest)
                self.counters.packets_sent += 1
            except OSError as e:
                logger.debug("scanner emulator: send failed: %s", e)

    def _build_block(self, block_id: int, extended: bool, kind: LineKind, first: int, n: int) -> list[bytes]:
        plan = self.plan
        height = self.lines_per_block
        pixfmt = self.pixel_format
        if kind is LineKind.SCAN:
            k = np.arange(first, first + n, dtype=np.int64)
            if self.repeat:
                high, low = _cyclic_lines(plan, first, n)
            else:
                high, low = plan.lines(first, n)
            enc = plan.encoder_at_line(k)
            ts = self.clock.t0_wall_ns + plan.line_offset_ns(k)
        else:
            high, low = plan.reference(kind is LineKind.DARK, n)
            enc = np.zeros(n, dtype=np.int64)
            ts = np.full(n, time.time_ns(), dtype=np.int64)
        payload = encode_lines(high, low, first, enc, ts, kind, pixfmt)
        dpp = gvsp.data_bytes_per_packet(self._regs[Reg.SCPS0], extended)
        leader = gvsp.Leader(
            payload_type=gvsp.PayloadType.IMAGE,
            timestamp_ticks=int(ts[0]),
            pixel_format=pixfmt,
            width=image_width_px(plan.n_channels, pixfmt),
            height=height,
            offset_x=0,
            offset_y=0,
            padding_x=0,
            padding_y=0,
        )
        packets = [gvsp.encode_leader(block_id, leader, extended)]
        for i, off in enumerate(range(0, len(payload), dpp)):
            packets.append(
                gvsp.encode_header(block_id, gvsp.ContentFormat.PAYLOAD, i + 1, extended) + payload[off : off + dpp]
            )
        packets.append(gvsp.encode_trailer(block_id, len(packets), gvsp.Trailer(gvsp.PayloadType.IMAGE, n), extended))
        return packets

    def _send_block(self, packets: list[bytes], block_id: int, dest: tuple[str, int], drop: bool) -> None:
        with self._lock:
            self._retention[block_id] = packets
            while len(self._retention) > self._retention_blocks:
                self._retention.popitem(last=False)
        self.counters.blocks_sent += 1
        if drop:
            self.counters.packets_dropped += len(packets)
            return
        for p in packets:
            self._emit(p, dest)
        self._flush_held(dest)

    def _resend(self, req: gvcp.ResendRequest) -> None:
        dest = self._destination()
        if dest is None:
            return
        self.counters.resend_requests += 1
        with self._lock:
            packets = self._retention.get(req.block_id)
        extended = req.extended
        last = req.last_packet_id
        if packets is not None:
            last = min(last, len(packets) - 1)
        for pid in range(req.first_packet_id, min(last, req.first_packet_id + 4096) + 1):
            if packets is None or pid >= len(packets):
                self.counters.packets_unavailable += 1
                p = gvsp.encode_header(
                    req.block_id if req.block_id else 1,
                    gvsp.ContentFormat.PAYLOAD,
                    pid & 0xFFFFFF,
                    extended,
                    status=Status.PACKET_UNAVAILABLE,
                )
                try:
                    self._stream.sendto(p, dest)
                except OSError as e:
                    logger.debug("scanner emulator: send failed: %s", e)
                continue
            p = packets[pid]
            self.counters.packets_resent += 1
            self._emit(struct.pack(">H", Status.RESENT_PACKET) + p[2:], dest, resend=True)

    def _stream_loop(self) -> None:
        block_id = 0
        scan_block_no = 0
        next_line = 0
        ref_index = {LineKind.DARK: 0, LineKind.AIR: 0}
        extended = False
        while not self._stop.is_set():
            if not self._streaming.wait(0.05):
                block_id = 0
                continue
            dest = self._destination()
            if dest is None:
                time.sleep(0.01)
                continue
            if block_id == 0:
                extended = bool(self._regs[DevReg.EXTENDED_ID_MODE])
                block_id = EXTENDED_START_BLOCK_ID if extended else self._start_block_id
            if self._calibration_pending.is_set():
                self._calibration_pending.clear()
                for kind in (LineKind.DARK, LineKind.AIR):
                    remaining = self.plan.n_reference_lines
                    while remaining > 0:
                        n = min(remaining, self.lines_per_block)
                        self._send_block(
                            self._build_block(block_id, extended, kind, ref_index[kind], n), block_id, dest, False
                        )
                        self.counters.reference_blocks_sent += 1
                        ref_index[kind] += n
                        remaining -= n
                        block_id = block_id + 1 if extended else gvsp.next_block_id(block_id)
                self.clock.start()
            height = self.lines_per_block
            end = None if self.repeat else self.plan.n_lines
            if end is not None and next_line >= end:
                self._stop.wait(0.05)
                continue
            n = height if end is None else min(height, end - next_line)
            # wait until the last line of the block has been acquired
            last_offset = int(self.plan.line_offset_ns(np.array([next_line + n - 1], dtype=np.int64))[0])
            if not self.clock.sleep_until(last_offset, self._stop):
                break
            if not self._streaming.is_set():
                continue
            packets = self._build_block(block_id, extended, LineKind.SCAN, next_line, n)
            self._send_block(packets, block_id, dest, scan_block_no in self.faults.drop_blocks)
            self.counters.lines_sent += n
            scan_block_no += 1
            next_line += n
            block_id = block_id + 1 if extended else gvsp.next_block_id(block_id)


def _cyclic_lines(plan: BeltPlan, first: int, n: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    total = plan.n_lines
    highs, lows = [], []
    k = first
    while k < first + n:
        start = k % total
        m = min(first + n - k, total - start)
        h, lo = plan.lines(start, m)
        highs.append(h)
        lows.append(lo)
        k += m
    return np.concatenate(highs), np.concatenate(lows)
