"""The reliable framed link both ends of the I/O-board serial line run (host and emulator).

One reader thread per link owns reading: it decodes frames, answers ACK/NAK, drops
duplicates by sequence number, tracks the peer's heartbeat and sends ours. Reliable frames
(CMD, EVT) are stop-and-wait: one outstanding, retransmitted on NAK or timeout at most
``retries`` times, then :class:`LinkError`. A failing port is closed, reported, and reopened
every ``reconnect_period_s`` until it returns.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlparse

import serial

from firmware_bridge.messages import Heartbeat, Message, MessageError, decode_message, encode_message
from firmware_bridge.serial_codec import DecodeFailure, Frame, FrameType, StreamDecoder, encode_frame

logger = logging.getLogger(__name__)


class LinkError(RuntimeError):
    """The serial link is down or the peer did not acknowledge a frame."""


class BytePort(Protocol):
    """The part of a pyserial port the link uses (also implemented by the emulator's pty master and socket)."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def open_port(url: str, read_timeout_s: float = 0.02) -> BytePort:
    """Open a transport by URL.

    ``serial:///dev/ttyUSB0?baud=115200``, a bare device path (a pseudo-terminal such as
    ``/dev/pts/3`` or a symlink to one), ``pty:///path``, ``socket://host:port``, ``loop://``
    and any other pyserial URL handler.
    """
    try:
        if url.startswith(("serial://", "pty://")):
            u = urlparse(url)
            options = {k: v[-1] for k, v in parse_qs(u.query).items()}
            baud = int(options.get("baud", "115200"))
            port: BytePort = serial.Serial(u.path, baudrate=baud, timeout=read_timeout_s, write_timeout=1.0)
            return port
        if url.startswith("socket://"):
            # our own TCP port: pyserial's socket handler reads byte by byte through in_waiting
            u = urlparse(url)
            if not u.hostname or not u.port:
                raise ValueError("socket:// URLs need a host and a port")
            sock = socket.create_connection((u.hostname, u.port), timeout=2.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SocketPort(sock, read_timeout_s)
        if url.startswith("/"):
            return serial.Serial(url, baudrate=115200, timeout=read_timeout_s, write_timeout=1.0)
        port = serial.serial_for_url(url, timeout=read_timeout_s, write_timeout=1.0)
        return port
    except (serial.SerialException, OSError, ValueError) as e:
        raise LinkError(f"cannot open serial transport {url!r}: {e}") from e


class FdPort:
    """A raw file descriptor (the master side of a pseudo-terminal) as a :class:`BytePort`."""

    def __init__(self, fd: int, read_timeout_s: float = 0.02) -> None:
        self.fd = fd
        self.timeout = read_timeout_s

    def read(self, size: int = 1) -> bytes:
        if self.fd < 0:
            raise OSError("pseudo-terminal closed")
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        if not ready:
            return b""
        data = os.read(self.fd, max(size, 4096))
        if not data:
            raise OSError("pseudo-terminal closed")
        return data

    def write(self, data: bytes) -> int:
        if self.fd < 0:
            raise OSError("pseudo-terminal closed")
        return os.write(self.fd, data)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            os.close(fd)
        except OSError as e:
            logger.debug("closing fd %d: %s", fd, e)


class SocketPort:
    """A connected TCP socket as a :class:`BytePort`."""

    def __init__(self, sock: socket.socket, read_timeout_s: float = 0.02) -> None:
        self.sock = sock
        sock.settimeout(read_timeout_s)

    def read(self, size: int = 1) -> bytes:
        try:
            data = self.sock.recv(max(size, 4096))
        except TimeoutError:
            return b""
        if not data:
            raise OSError("connection closed by peer")
        return data

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)
        return len(data)

    def close(self) -> None:
        self.sock.close()


@dataclass(slots=True)
class LinkStats:
    frames_sent: int = 0
    frames_received: int = 0
    acks_received: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    retransmits: int = 0
    duplicates_dropped: int = 0
    bad_messages: int = 0
    send_failures: int = 0
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    disconnects: int = 0
    reconnects: int = 0
    handler_errors: int = 0


class FramedLink:
    """Frames, acknowledgements, retransmission, heartbeat and reconnect over one byte port."""

    def __init__(
        self,
        port_factory: Callable[[], BytePort],
        on_message: Callable[[Message], None],
        *,
        name: str,
        reliable_type: FrameType = FrameType.CMD,
        heartbeat_period_s: float = 0.1,
        heartbeat_timeout_s: float = 0.5,
        ack_timeout_s: float = 0.05,
        retries: int = 3,
        reconnect_period_s: float = 0.2,
    ) -> None:
        self.name = name
        self.stats = LinkStats()
        self.decoder = StreamDecoder()
        self.last_error: str | None = None
        self._factory = port_factory
        self._on_message = on_message
        self._reliable_type = reliable_type
        self._hb_period = heartbeat_period_s
        self._hb_timeout = heartbeat_timeout_s
        self._ack_timeout = ack_timeout_s
        self._retries = retries
        self._reconnect_period = reconnect_period_s
        self._port: BytePort | None = None
        self._port_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ack_cond = threading.Condition()
        self._ack_state: tuple[int, bool] | None = None  # (seq, acked) from the reader
        self._tx_seq = 0
        self._rx_last_seq: int | None = None
        self._hb_counter = 0
        self._last_peer_hb = 0.0
        self._next_hb = 0.0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.corrupt_next_frames = 0  # test hook: flip a byte in the next N CMD/EVT frames written
        self.corrupt_next_acks = 0  # test hook: flip a byte in the next N ACK frames written

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, connect_now: bool = True) -> None:
        if connect_now:
            self._connect_once()
        self._thread = threading.Thread(target=self._run, name=f"link-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._drop_port(None)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def peer_alive(self) -> bool:
        return self.connected and time.monotonic() - self._last_peer_hb < self._hb_timeout

    def _connect_once(self) -> bool:
        try:
            port = self._factory()
        except (LinkError, OSError, serial.SerialException) as e:
            self.last_error = str(e)
            return False
        self._port = port
        self.decoder = StreamDecoder(stats=self.decoder.stats)
        self._rx_last_seq = None
        self._connected.set()
        self._next_hb = 0.0
        return True

    def _drop_port(self, error: BaseException | None, failed: BytePort | None = None) -> None:
        """Close the current port; with ``failed``, only if that port is still the current one."""
        with self._port_lock:
            if failed is not None and self._port is not failed:
                return  # an old port's late error: the link has already moved on
            port, self._port = self._port, None
            was = self._connected.is_set()
            if error is not None and was:
                # Record why before anyone can observe the link as disconnected.
                self.stats.disconnects += 1
                self.last_error = f"{self.name}: serial port lost: {error}"
            self._connected.clear()
        if error is not None and was:
            logger.error("%s; reconnecting every %.1f s", self.last_error, self._reconnect_period)
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException) as e:
                logger.debug("%s: closing port: %s", self.name, e)
        with self._ack_cond:
            self._ack_cond.notify_all()

    # ---- writing --------------------------------------------------------------------------------
    def _write_frame(self, frame: Frame) -> None:
        port = self._port
        if port is None:
            raise LinkError(f"{self.name}: serial port is not connected ({self.last_error or 'not opened'})")
        data = encode_frame(frame)
        corrupt = False
        if self.corrupt_next_frames > 0 and frame.type in (FrameType.CMD, FrameType.EVT):
            self.corrupt_next_frames -= 1
            corrupt = True
        elif self.corrupt_next_acks > 0 and frame.type is FrameType.ACK:
            self.corrupt_next_acks -= 1
            corrupt = True
        if corrupt:
            mutable = bytearray(data)
            mutable[len(mutable) // 2] ^= 0x5A
            if 0 in mutable[:-1]:
                mutable[len(mutable) // 2] ^= 0x5A ^ 0x01  # keep the corruption inside the frame
            data = bytes(mutable)
        try:
            with self._write_lock:
                port.write(data)
        except (OSError, serial.SerialException) as e:
            self.stats.send_failures += 1
            raise LinkError(f"{self.name}: write failed: {e}") from e
        self.stats.frames_sent += 1

    def write_raw(self, data: bytes) -> None:
        """Put raw bytes on the line (tests inject garbage this way)."""
        port = self._port
        if port is None:
            raise LinkError(f"{self.name}: not connected")
        with self._write_lock:
            port.write(data)

    def send_unreliable(self, msg: Message) -> None:
        self._write_frame(Frame(FrameType.HEARTBEAT, 0, encode_message(msg)))

    def send(self, msg: Message) -> None:
        """Send one message reliably (stop-and-wait); raises :class:`LinkError` when it is not acknowledged."""
        payload = encode_message(msg)
        with self._send_lock:
            self._tx_seq = 1 if self._tx_seq >= 0xFF else self._tx_seq + 1
            seq = self._tx_seq
            frame = Frame(self._reliable_type, seq, payload)
            for attempt in range(self._retries + 1):
                if attempt:
                    self.stats.retransmits += 1
                with self._ack_cond:
                    self._ack_state = (seq, False)
                self._write_frame(frame)
                deadline = time.monotonic() + self._ack_timeout
                with self._ack_cond:
                    while True:
                        state = self._ack_state
                        if state is None:  # NAK: retransmit now
                            break
                        if state[1]:
                            return
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not self.connected:
                            break
                        self._ack_cond.wait(remaining)
                if not self.connected:
                    raise LinkError(f"{self.name}: serial port lost while sending ({self.last_error})")
            raise LinkError(f"{self.name}: frame seq {seq} not acknowledged after {self._retries + 1} tries")

    # ---- reader thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._port is None:
                if self._stop.wait(self._reconnect_period):
                    break
                if self._connect_once():
                    self.stats.reconnects += 1
                    logger.warning("%s: serial port is back", self.name)
                continue
            now = time.monotonic()
            if now >= self._next_hb:
                self._next_hb = now + self._hb_period
                self._hb_counter = (self._hb_counter + 1) & 0xFFFFFFFF
                port = self._port
                try:
                    self.send_unreliable(Heartbeat(self._hb_counter, time.time_ns()))
                    self.stats.heartbeats_sent += 1
                except LinkError as e:
                    self._drop_port(e, port)
                    continue
            port = self._port
            if port is None:
                continue
            try:
                data = self._read_available(port)
            except (OSError, serial.SerialException, TypeError, AttributeError, ValueError) as e:
                # pyserial raises TypeError/AttributeError when its fd vanished under it
                self._drop_port(e, port)
                continue
            if data:
                for item in self.decoder.feed(data):
                    self._on_item(item)

    @staticmethod
    def _read_available(port: BytePort) -> bytes:
        # pyserial's read(n) blocks until n bytes or its timeout: ask for what is waiting (at least 1)
        waiting = getattr(port, "in_waiting", None)
        if waiting is None:
            return port.read(4096)
        return port.read(max(1, int(waiting)))

    def _on_item(self, item: Frame | DecodeFailure) -> None:
        if isinstance(item, DecodeFailure):
            logger.debug("%s: dropped bad frame (%s): %s", self.name, item.reason, item.message)
            self._reply(FrameType.NAK, 0)
            return
        self.stats.frames_received += 1
        if item.type is FrameType.HEARTBEAT:
            self._last_peer_hb = time.monotonic()
            self.stats.heartbeats_received += 1
            return
        if item.type in (FrameType.ACK, FrameType.NAK):
            with self._ack_cond:
                state = self._ack_state
                if item.type is FrameType.ACK:
                    self.stats.acks_received += 1
                    if state is not None and state[0] == item.seq:
                        self._ack_state = (item.seq, True)
                else:
                    self.stats.naks_received += 1
                    if state is not None and not state[1] and item.seq in (0, state[0]):
                        self._ack_state = None
                self._ack_cond.notify_all()
            return
        # CMD or EVT: a reliable frame from the peer
        self._last_peer_hb = time.monotonic()  # any traffic proves the peer alive
        try:
            msg = decode_message(item.payload)
        except MessageError as e:
            self.stats.bad_messages += 1
            logger.warning("%s: undecodable message in frame seq %d: %s", self.name, item.seq, e)
            self._reply(FrameType.NAK, item.seq)
            return
        self._reply(FrameType.ACK, item.seq)
        if item.seq == self._rx_last_seq:
            self.stats.duplicates_dropped += 1
            return
        self._rx_last_seq = item.seq
        try:
            self._on_message(msg)
        except Exception:  # keep the reader alive: the handler's bug must not take the link down
            self.stats.handler_errors += 1
            logger.exception("%s: message handler failed for %r", self.name, msg)

    def _reply(self, ftype: FrameType, seq: int) -> None:
        if ftype is FrameType.NAK:
            self.stats.naks_sent += 1
        try:
            self._write_frame(Frame(ftype, seq))
        except LinkError as e:
            logger.debug("%s: cannot send %s: %s", self.name, ftype.name, e)
