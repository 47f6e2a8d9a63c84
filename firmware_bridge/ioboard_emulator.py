"""I/O-board emulator: encoder, entry photo-eye, upstream barcode reader, X-ray generator and reject gate.

Speaks the serial protocol of ``SPEC.md`` over a real pseudo-terminal (default; the host opens
``emulator.url``, a stable symlink to the slave side) or a loopback TCP socket
(``socket://127.0.0.1:port``). Events follow the shared :class:`BeltPlan` and :class:`BeltClock`,
so photo-eye edges, encoder counts and the scanner's lines agree.

The gate has its own timing: it acts when a parcel's leading edge reaches it
(``scan_to_gate_mm`` past the scan plane) plus ``gate_actuation_ms``. It diverts a parcel unless
an explicit release (``divert=False``) arrived before the parcel reached the gate
(fail-secure), and records what happened per parcel in :attr:`gate_log`.
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import socket
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.belt_clock import BeltClock
from firmware_bridge.belt_plan import BeltPlan, PlannedEvent
from firmware_bridge.messages import (
    BarcodeReadMsg,
    BeltStateMsg,
    EncoderTickMsg,
    GateAckMsg,
    GateActuatedMsg,
    GateCommandMsg,
    GateReason,
    GeneratorStatusMsg,
    Message,
    PhotoEyeEdgeMsg,
)
from firmware_bridge.serial_codec import FrameType
from firmware_bridge.serial_link import BytePort, FdPort, FramedLink, LinkError, SocketPort

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class GateRecord:
    """What the gate did with one parcel (a touching group counts as one parcel)."""

    parcel_seq: int
    plan_index: int  # first plan parcel of the group
    plan_indices: tuple[int, ...]
    barcodes: tuple[str, ...]
    command_divert: bool | None = None  # the first accepted command, None when none arrived in time
    command_sequence: int | None = None
    command_at_ns: int | None = None
    command_before_gate: bool = False
    late_commands: int = 0
    diverted: bool | None = None  # what the gate did (None: the parcel has not reached it yet)
    actuated_at_ns: int | None = None
    gate_reached_at_ns: int | None = None


@dataclass(slots=True)
class IoBoardCounters:
    events_sent: int = 0
    events_failed: int = 0
    gate_commands: int = 0
    gate_commands_late: int = 0
    gate_commands_unknown: int = 0
    host_heartbeat_losses: int = 0


class IoBoardEmulator:
    """The scanner's I/O board on a pseudo-terminal (``transport="pty"``) or TCP (``transport="tcp"``)."""

    def __init__(
        self,
        plan: BeltPlan,
        *,
        clock: BeltClock | None = None,
        transport: str = "pty",
        host: str = "127.0.0.1",
        port: int = 0,
        repeat: bool = False,
        encoder_tick_period_s: float = 0.05,
        gate_actuation_ms: float = 20.0,
        heartbeat_period_s: float = 0.1,
        heartbeat_timeout_s: float = 0.5,
        generator_kv: float = 160.0,
        generator_ma: float = 1.0,
        link_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if transport not in ("pty", "tcp"):
            raise ValueError(f"transport must be 'pty' or 'tcp', got {transport!r}")
        self.plan = plan
        self.clock = clock or BeltClock()
        self.transport = transport
        self.repeat = repeat
        self.counters = IoBoardCounters()
        self.gate_log: dict[int, GateRecord] = {}
        self._gate_lock = threading.Lock()
        self._tick_period = encoder_tick_period_s
        self._actuation_ns = round(gate_actuation_ms * 1e6)
        self._gen = (generator_kv, generator_ma)
        self._stop = threading.Event()
        self._out: queue.Queue[Message] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._events = plan.events()
        self._n_groups = max((ev.group for ev in self._events), default=-1) + 1
        self._cycle_counts = round(plan.n_lines * plan.counts_per_line)
        self._answers: dict[int, GateAckMsg] = {}
        self._host_was_alive = False
        self._present = threading.Event()
        self._present.set()
        # transport
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._server: socket.socket | None = None
        if transport == "pty":
            if link_path is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="ioboard-")
                link_path = Path(self._tmpdir.name) / "ttyIO0"
            self._link_path = Path(link_path)
            self._open_pty()
        else:
            self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.bind((host, port))
            self._server.listen(1)
            self._server.settimeout(0.1)
            self._tcp_port = int(self._server.getsockname()[1])
            self._tcp_host = host
        self.link = FramedLink(
            self._port_factory,
            self._on_message,
            name="io-board-emulator",
            reliable_type=FrameType.EVT,
            heartbeat_period_s=heartbeat_period_s,
            heartbeat_timeout_s=heartbeat_timeout_s,
            reconnect_period_s=0.05,
        )

    # ---- transport ------------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        name = os.ttyname(slave)
        self._master, self._slave = master, slave
        tmp = self._link_path.with_suffix(".tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(name)
        tmp.replace(self._link_path)

    def _port_factory(self) -> BytePort:
        if not self._present.is_set():
            raise LinkError("board unplugged")
        if self.transport == "pty":
            if self._master is None:
                self._open_pty()
            assert self._master is not None
            return FdPort(self._master)
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            return SocketPort(conn)
        raise LinkError("emulator stopped")

    @property
    def url(self) -> str:
        """What the host opens: the pty symlink path, or ``socket://host:port``."""
        if self.transport == "pty":
            return str(self._link_path)
        return f"socket://{self._tcp_host}:{self._tcp_port}"

    def unplug(self) -> None:
        """Make the port vanish (pty closed and its path removed, or TCP connection dropped)."""
        self._present.clear()
        if self.transport == "pty" and self._link_path.is_symlink():
            self._link_path.unlink()
        # the link closes the master (its FdPort); then the slave goes, so the host sees a hang-up
        self.link._drop_port(LinkError("unplugged"))
        if self.transport == "pty":
            self._master = None
            slave, self._slave = self._slave, None
            if slave is not None:
                try:
                    os.close(slave)
                except OSError as e:
                    logger.debug("closing pty slave: %s", e)

    def replug(self) -> None:
        """Bring the port back (a fresh pseudo-terminal behind the same path, or accept a new TCP connection)."""
        if self.transport == "pty":
            self._open_pty()
        self._present.set()

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self.link.start(connect_now=self.transport == "pty")
        t = threading.Thread(target=self._schedule_loop, name="ioboard-emu-events", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3)
        self._threads.clear()
        self.link.close()
        if self.transport == "pty":
            slave, self._slave = self._slave, None
            if slave is not None:
                try:
                    os.close(slave)
                except OSError as e:
                    logger.debug("closing pty slave: %s", e)
            if self._link_path.is_symlink():
                self._link_path.unlink()
        if self._server is not None:
            self._server.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def __enter__(self) -> IoBoardEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_generator(self, xray_on: bool, interlock_closed: bool) -> None:
        """Report an X-ray generator change (e.g. the interlock opens) to the host."""
        self._out.put(GeneratorStatusMsg(xray_on, interlock_closed, self._gen[0], self._gen[1], time.time_ns()))

    def inject_garbage(self, data: bytes) -> None:
        """Write raw bytes on the line (noise)."""
        self.link.write_raw(data)

    # ---- plan -----------------------------------------------------------------------------------
    def _seq_of(self, group: int, cycle: int) -> int:
        return cycle * self._n_groups + group + 1

    def _group_events(self, group: int) -> list[PlannedEvent]:
        return [ev for ev in self._events if ev.group == group]

    def _now_counts(self) -> int:
        if not self.clock.started:
            return -(1 << 62)
        return round(self.clock.elapsed_ns() / 1e9 * self.plan.belt_speed_mm_s * self.plan.encoder_counts_per_mm)

    def _gate_counts(self, parcel_seq: int) -> int | None:
        if parcel_seq < 1 or self._n_groups == 0:
            return None
        cycle, group = divmod(parcel_seq - 1, self._n_groups)
        if cycle and not self.repeat:
            return None
        for ev in self._events:
            if ev.kind == "gate" and ev.group == group:
                return ev.encoder_counts + cycle * self._cycle_counts
        return None

    def _record(self, parcel_seq: int) -> GateRecord:
        rec = self.gate_log.get(parcel_seq)
        if rec is None:
            _, group = divmod(parcel_seq - 1, max(self._n_groups, 1))
            members = [ev.parcel_index for ev in self._events if ev.kind == "barcode" and ev.group == group]
            codes = tuple(c for ev in self._events if ev.kind == "barcode" and ev.group == group for c in ev.barcodes)
            rec = GateRecord(parcel_seq, members[0] if members else -1, tuple(members), codes)
            self.gate_log[parcel_seq] = rec
        return rec

    # ---- host messages (reader thread) -----------------------------------------------------------
    def _on_message(self, msg: Message) -> None:
        if not isinstance(msg, GateCommandMsg):
            return
        self.counters.gate_commands += 1
        now_ns = time.time_ns()
        with self._gate_lock:
            if msg.sequence in self._answers:
                first = self._answers[msg.sequence]
                ack = GateAckMsg(first.parcel_seq, first.sequence, first.accepted, first.divert, first.reason, now_ns)
            else:
                gate_counts = self._gate_counts(msg.parcel_seq)
                if gate_counts is None:
                    self.counters.gate_commands_unknown += 1
                    ack = GateAckMsg(msg.parcel_seq, msg.sequence, False, msg.divert, GateReason.UNKNOWN_PARCEL, now_ns)
                else:
                    rec = self._record(msg.parcel_seq)
                    if self._now_counts() < gate_counts and rec.diverted is None:
                        if rec.command_divert is None:
                            rec.command_divert = msg.divert
                            rec.command_sequence = msg.sequence
                            rec.command_at_ns = now_ns
                            rec.command_before_gate = True
                        elif msg.divert and not rec.command_divert:
                            rec.command_divert = True  # a later reject always wins over a release
                            rec.command_sequence = msg.sequence
                        ack = GateAckMsg(msg.parcel_seq, msg.sequence, True, msg.divert, GateReason.OK, now_ns)
                    else:
                        rec.late_commands += 1
                        self.counters.gate_commands_late += 1
                        logger.warning("gate: command %d for parcel %d arrived too late", msg.sequence, msg.parcel_seq)
                        ack = GateAckMsg(msg.parcel_seq, msg.sequence, False, msg.divert, GateReason.TOO_LATE, now_ns)
                self._answers[msg.sequence] = ack
        self._out.put(ack)

    # ---- event scheduler (sender thread) ---------------------------------------------------------
    def _send(self, msg: Message) -> None:
        try:
            self.link.send(msg)
            self.counters.events_sent += 1
        except LinkError as e:
            self.counters.events_failed += 1
            logger.debug("io-board emulator: event %s not delivered: %s", type(msg).__name__, e)

    def _schedule_loop(self) -> None:
        while not self._stop.is_set() and not self.clock.wait_started(0.05):
            self._drain_out(0.0)
        if self._stop.is_set():
            return
        plan = self.plan
        counts_per_s = plan.encoder_counts_per_mm * plan.belt_speed_mm_s
        self._send(BeltStateMsg(True, plan.belt_speed_mm_s, self.clock.t0_wall_ns))
        self._send(GeneratorStatusMsg(True, True, self._gen[0], self._gen[1], time.time_ns()))
        # heap of (offset_ns, order, kind, payload)
        heap: list[tuple[int, int, str, PlannedEvent | None, int]] = []
        order = 0
        cycle = 0

        def push_cycle(c: int) -> None:
            nonlocal order
            base = c * self._cycle_counts
            for ev in self._events:
                counts = ev.encoder_counts + base
                at = round(counts / counts_per_s * 1e9)
                if ev.kind == "gate":
                    at += self._actuation_ns
                heapq.heappush(heap, (at, order, ev.kind, ev, c))
                order += 1

        push_cycle(0)
        plan_end_ns = round(plan.n_lines * plan.counts_per_line / counts_per_s * 1e9)
        next_tick = 0
        while not self._stop.is_set():
            elapsed = self.clock.elapsed_ns()
            if self.repeat and elapsed > (cycle + 1) * plan_end_ns - 500_000_000:
                cycle += 1
                push_cycle(cycle)
            while heap and heap[0][0] <= elapsed:
                at, _, kind, ev, c = heapq.heappop(heap)
                assert ev is not None
                self._fire(kind, ev, c, at)
            if elapsed >= next_tick:
                next_tick = elapsed + round(self._tick_period * 1e9)
                if self.repeat or elapsed <= plan_end_ns:
                    self._send(EncoderTickMsg(self._now_counts(), time.time_ns()))
            self._check_host()
            wait_ns = min([next_tick] + ([heap[0][0]] if heap else [])) - self.clock.elapsed_ns()
            self._drain_out(max(0.0, min(wait_ns / 1e9, 0.05)))

    def _drain_out(self, timeout_s: float) -> None:
        try:
            msg = self._out.get(timeout=timeout_s) if timeout_s > 0 else self._out.get_nowait()
        except queue.Empty:
            return
        self._send(msg)
        while True:
            try:
                self._send(self._out.get_nowait())
            except queue.Empty:
                return

    def _fire(self, kind: str, ev: PlannedEvent, cycle: int, at_offset_ns: int) -> None:
        counts = ev.encoder_counts + cycle * self._cycle_counts
        at_ns = self.clock.wall_ns(at_offset_ns)
        seq = self._seq_of(ev.group, cycle)
        if kind == "barcode":
            self._send(BarcodeReadMsg(0, ev.barcodes, counts, at_ns))
        elif kind == "eye_blocked":
            self._send(PhotoEyeEdgeMsg(0, True, seq, counts, at_ns))
        elif kind == "eye_clear":
            self._send(PhotoEyeEdgeMsg(0, False, seq, counts, at_ns))
        elif kind == "gate":
            with self._gate_lock:
                rec = self._record(seq)
                rec.gate_reached_at_ns = self.clock.wall_ns(at_offset_ns - self._actuation_ns)
                released = rec.command_divert is False and rec.command_before_gate
                rec.diverted = not released
                rec.actuated_at_ns = at_ns
            logger.info(
                "gate: parcel %d %s (%s)",
                seq,
                "diverted" if rec.diverted else "released",
                "commanded" if rec.command_divert is not None else "no command in time: fail-secure",
            )
            self._send(GateActuatedMsg(seq, bool(rec.diverted), rec.command_divert is not None, counts, at_ns))

    def _check_host(self) -> None:
        alive = self.link.peer_alive()
        if self._host_was_alive and not alive:
            self.counters.host_heartbeat_losses += 1
            logger.warning("io-board emulator: host heartbeat lost (a real board would stop the belt and HV)")
        self._host_was_alive = alive
