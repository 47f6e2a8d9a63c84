"""Host side of the scanner's I/O board link: events in, gate commands out.

``IoBoardLink(url)`` opens the transport (``serial:///dev/ttyUSB0?baud=115200``, a device or
pseudo-terminal path, ``socket://host:port``, ``loop://``), runs one reader thread that owns the
port, and exposes the board's messages through :meth:`poll_event`. Gate commands are sent
reliably and answered by the board's ``GATE_ACK``; a vanished port raises :class:`IoLinkError`
with the reason and the link reconnects on its own when the port returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from firmware_bridge.messages import (
    BarcodeReadMsg,
    BeltStateMsg,
    EncoderTickMsg,
    FaultMsg,
    GateAckMsg,
    GateActuatedMsg,
    GateCommandMsg,
    GeneratorStatusMsg,
    Message,
    PhotoEyeEdgeMsg,
)
from firmware_bridge.serial_codec import DecoderStats, FrameType
from firmware_bridge.serial_link import FramedLink, LinkError, LinkStats, open_port

logger = logging.getLogger(__name__)

BoardEvent = (
    BeltStateMsg
    | EncoderTickMsg
    | PhotoEyeEdgeMsg
    | BarcodeReadMsg
    | GeneratorStatusMsg
    | GateAckMsg
    | GateActuatedMsg
    | FaultMsg
)


class IoLinkError(LinkError):
    """The I/O board link is down, or the board did not answer a command in time."""


class IoBoardLink:
    """The scanner's I/O board over a serial transport (implements ``smartscreen.domain.ports.IoLink``)."""

    def __init__(
        self,
        url: str,
        *,
        heartbeat_period_s: float = 0.1,
        heartbeat_timeout_s: float = 0.5,
        ack_timeout_s: float = 0.05,
        retries: int = 3,
        reconnect_period_s: float = 0.2,
        require_connection: bool = True,
        max_queued_events: int = 10000,
    ) -> None:
        self.url = url
        self._events: queue.Queue[BoardEvent] = queue.Queue(maxsize=max_queued_events)
        self._acks: dict[int, GateAckMsg] = {}
        self._ack_cond = threading.Condition()
        self._waiting: set[int] = set()
        self.events_dropped = 0
        self._link = FramedLink(
            lambda: open_port(url),
            self._on_message,
            name=f"io-board {url}",
            reliable_type=FrameType.CMD,
            heartbeat_period_s=heartbeat_period_s,
            heartbeat_timeout_s=heartbeat_timeout_s,
            ack_timeout_s=ack_timeout_s,
            retries=retries,
            reconnect_period_s=reconnect_period_s,
        )
        self._link.start(connect_now=True)
        if require_connection and not self._link.connected:
            error = self._link.last_error
            self._link.close()
            raise IoLinkError(f"cannot open the I/O board link {url!r}: {error}")

    # ---- incoming -------------------------------------------------------------------------------
    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, GateAckMsg):
            with self._ack_cond:
                if msg.sequence in self._waiting:
                    self._acks[msg.sequence] = msg
                    self._ack_cond.notify_all()
                    return
        if isinstance(msg, GateCommandMsg):
            logger.warning("%s: ignoring a gate command sent by the board", self.url)
            return
        if isinstance(
            msg,
            BeltStateMsg
            | EncoderTickMsg
            | PhotoEyeEdgeMsg
            | BarcodeReadMsg
            | GeneratorStatusMsg
            | GateAckMsg
            | GateActuatedMsg
            | FaultMsg,
        ):
            try:
                self._events.put_nowait(msg)
            except queue.Full:
                self.events_dropped += 1
                logger.error("%s: event queue full, dropping %s", self.url, type(msg).__name__)

    def poll_event(self, timeout_s: float) -> BoardEvent | None:
        """The next board event, or None when none arrived within ``timeout_s``."""
        try:
            return self._events.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return None

    # ---- outgoing -------------------------------------------------------------------------------
    def send_gate_command(
        self, parcel_seq: int, divert: bool, sequence: int, deadline_ns: int, timeout_s: float = 0.5
    ) -> GateAckMsg:
        """Route one parcel; returns the board's acknowledgement (``accepted`` False says why not).

        Raises :class:`IoLinkError` when the link is down, the frame is not acknowledged after
        the bounded retransmits, or no ``GATE_ACK`` arrives within ``timeout_s``.
        """
        cmd = GateCommandMsg(parcel_seq=parcel_seq, divert=divert, sequence=sequence, deadline_ns=deadline_ns)
        with self._ack_cond:
            self._waiting.add(sequence)
            self._acks.pop(sequence, None)
        try:
            try:
                self._link.send(cmd)
            except LinkError as e:
                raise IoLinkError(f"gate command {sequence} for parcel {parcel_seq} not delivered: {e}") from e
            deadline = time.monotonic() + timeout_s
            with self._ack_cond:
                while sequence not in self._acks:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise IoLinkError(
                            f"no gate acknowledgement for command {sequence} (parcel {parcel_seq}) "
                            f"within {timeout_s * 1000:.0f} ms"
                        )
                    self._ack_cond.wait(remaining)
                return self._acks.pop(sequence)
        finally:
            with self._ack_cond:
                self._waiting.discard(sequence)

    # ---- state ----------------------------------------------------------------------------------
    def link_alive(self) -> bool:
        """False when the port is gone or the board's heartbeat has been missing longer than its timeout."""
        return self._link.peer_alive()

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def last_error(self) -> str | None:
        return self._link.last_error

    @property
    def stats(self) -> LinkStats:
        return self._link.stats

    @property
    def decoder_stats(self) -> DecoderStats:
        return self._link.decoder.stats

    @property
    def framed_link(self) -> FramedLink:
        return self._link

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> IoBoardLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
