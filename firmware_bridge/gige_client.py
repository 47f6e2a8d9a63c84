"""GVCP client: discovery, register and memory access, control privilege and heartbeat (sync, UDP)."""

from __future__ import annotations

import io
import logging
import socket
import struct
import threading
import time
import zipfile

from firmware_bridge import gvcp
from firmware_bridge.gvcp import Cmd, Reg

logger = logging.getLogger(__name__)


class GigeError(RuntimeError):
    """A GigE Vision device did not answer or refused a command."""


class GvcpTimeout(GigeError):
    pass


class GvcpStatusError(GigeError):
    def __init__(self, command: str, status: int) -> None:
        try:
            name = gvcp.Status(status).name
        except ValueError:
            name = "UNKNOWN"
        super().__init__(f"{command} refused with status 0x{status:04X} ({name})")
        self.status = status


def discover(host: str, port: int = gvcp.GVCP_PORT, timeout_s: float = 0.5) -> gvcp.DiscoveryInfo | None:
    """Send DISCOVERY to one address (unicast, or a broadcast address); first answer or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.settimeout(timeout_s)
        sock.sendto(
            gvcp.encode_command(Cmd.DISCOVERY, b"", 0xFFFF, gvcp.FLAG_ACK_REQUIRED | gvcp.FLAG_BROADCAST_ACK),
            (host, port),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(2048)
            except TimeoutError:
                return None
            try:
                header, payload = gvcp.decode_ack(data)
                if header.ack == Cmd.DISCOVERY + 1 and header.status == 0:
                    return gvcp.decode_discovery_ack(payload)
            except gvcp.GvcpError as e:
                logger.warning("ignoring malformed discovery answer from %s: %s", host, e)
    return None


class GvcpClient:
    """One control channel to one device. Thread-safe: transactions are serialised by a lock."""

    def __init__(
        self,
        host: str,
        port: int = gvcp.GVCP_PORT,
        timeout_s: float = 0.5,
        retries: int = 5,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.connect((host, port))
        self._lock = threading.Lock()
        self._req_id = 0
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self.heartbeat_failures = 0
        self.control_lost = False
        self.retransmissions = 0

    @property
    def local_ip(self) -> str:
        ip: str = self._sock.getsockname()[0]
        return ip

    def _next_req_id(self) -> int:
        self._req_id = 1 if self._req_id >= 0xFFFF else self._req_id + 1
        return self._req_id

    def transact(self, command: Cmd, payload: bytes) -> bytes:
        """Send one command, wait for its ACK (retrying, honouring PENDING_ACK); returns the ACK payload."""
        with self._lock:
            req_id = self._next_req_id()
            packet = gvcp.encode_command(command, payload, req_id)
            for attempt in range(self.retries + 1):
                if attempt:
                    self.retransmissions += 1
                try:
                    self._sock.send(packet)
                except OSError as e:
                    raise GigeError(f"cannot send {command.name} to {self.host}:{self.port}: {e}") from e
                deadline = time.monotonic() + self.timeout_s
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._sock.settimeout(remaining)
                    try:
                        data = self._sock.recv(2048)
                    except TimeoutError:
                        break
                    except OSError as e:  # ICMP port unreachable surfaces here on a connected socket
                        raise GigeError(f"{command.name} to {self.host}:{self.port} failed: {e}") from e
                    try:
                        header, body = gvcp.decode_ack(data)
                    except gvcp.GvcpError as e:
                        logger.warning("discarding malformed GVCP ack: %s", e)
                        continue
                    if header.ack_id != req_id:
                        continue  # stale answer to an earlier retry
                    if header.ack == Cmd.PENDING_ACK + 1 or header.ack == Cmd.PENDING_ACK:
                        extra_ms = struct.unpack_from(">HH", body, 0)[1] if len(body) >= 4 else 0
                        deadline = time.monotonic() + extra_ms / 1000 + self.timeout_s
                        continue
                    if header.status != 0:
                        raise GvcpStatusError(command.name, header.status)
                    return body
            raise GvcpTimeout(
                f"no answer to {command.name} from {self.host}:{self.port} after {self.retries + 1} tries "
                f"of {self.timeout_s * 1000:.0f} ms"
            )

    # ---- registers and memory ------------------------------------------------------------------
    def read_registers(self, addresses: list[int]) -> list[int]:
        """Read several registers; devices that answer only the first of a batch are read one by one."""
        values: list[int] = []
        while len(values) < len(addresses):
            rest = addresses[len(values) :]
            got = gvcp.decode_u32_list(self.transact(Cmd.READREG, gvcp.encode_readreg(rest)), "READREG ack")
            if not got:
                raise GigeError(f"READREG of 0x{rest[0]:X} returned no value")
            values += got[: len(rest)]
        return values

    def read_register(self, address: int) -> int:
        return self.read_registers([address])[0]

    def write_registers(self, pairs: list[tuple[int, int]]) -> None:
        """Write several registers; the ACK's index says how many the device applied (Aravis's fake
        camera applies only the first of a batch), and the rest are sent again."""
        done = 0
        while done < len(pairs):
            body = self.transact(Cmd.WRITEREG, gvcp.encode_writereg(pairs[done:]))
            index = struct.unpack_from(">HH", body, 0)[1] if len(body) >= 4 else len(pairs) - done
            if index <= 0:
                raise GigeError(f"WRITEREG of 0x{pairs[done][0]:X} was acknowledged without being applied")
            done += index

    def write_register(self, address: int, value: int) -> None:
        self.write_registers([(address, value)])

    def read_memory(self, address: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            n = min(gvcp.MAX_READMEM, length - len(out))
            n_aligned = (n + 3) & ~3
            body = self.transact(Cmd.READMEM, gvcp.encode_readmem(address + len(out), n_aligned))
            if len(body) < 4 + n:
                raise GigeError(f"READMEM at 0x{address + len(out):X} returned {len(body) - 4} bytes, wanted {n}")
            out += body[4 : 4 + n]
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        if len(data) % 4:
            raise GigeError(f"WRITEMEM data must be a multiple of 4 bytes, got {len(data)}")
        for off in range(0, len(data), gvcp.MAX_READMEM):
            self.transact(Cmd.WRITEMEM, struct.pack(">I", address + off) + data[off : off + gvcp.MAX_READMEM])

    def read_float(self, address: int) -> float:
        value: float = struct.unpack(">f", struct.pack(">I", self.read_register(address)))[0]
        return value

    def read_string(self, address: int, length: int) -> str:
        return self.read_memory(address, length).split(b"\x00", 1)[0].decode("ascii", errors="replace")

    def read_xml(self) -> str:
        """The device's GenICam XML (first URL; unzipped if it is a .zip)."""
        url = self.read_string(Reg.XML_URL_0, 512)
        loc = gvcp.parse_xml_url(url)
        data = self.read_memory(loc.address, loc.length)
        if loc.filename.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = zf.read(zf.namelist()[0])
        return data.decode("utf-8", errors="replace")

    # ---- control privilege and heartbeat -------------------------------------------------------
    def take_control(self, exclusive: bool = False) -> None:
        self.write_register(Reg.CCP, gvcp.CCP_CONTROL | (gvcp.CCP_EXCLUSIVE if exclusive else 0))
        self.control_lost = False

    def release_control(self) -> None:
        self.write_register(Reg.CCP, 0)

    def start_heartbeat(self, period_s: float | None = None) -> None:
        """Read CCP every ``period_s`` (default: device heartbeat timeout / 3) so the device keeps our control."""
        if self._heartbeat_thread is not None:
            return
        if period_s is None:
            period_s = max(0.05, self.read_register(Reg.HEARTBEAT_TIMEOUT) / 1000 / 3)
        self._heartbeat_stop.clear()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, args=(period_s,), name=f"gvcp-heartbeat-{self.host}:{self.port}", daemon=True
        )
        self._heartbeat_thread.start()

    def _heartbeat_loop(self, period_s: float) -> None:
        while not self._heartbeat_stop.wait(period_s):
            try:
                ccp = self.read_register(Reg.CCP)
            except GigeError as e:
                self.heartbeat_failures += 1
                logger.warning("GVCP heartbeat to %s:%d failed: %s", self.host, self.port, e)
                continue
            if not ccp & (gvcp.CCP_CONTROL | gvcp.CCP_EXCLUSIVE):
                if not self.control_lost:
                    logger.error("device %s:%d dropped our control privilege", self.host, self.port)
                self.control_lost = True

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=2)
            self._heartbeat_thread = None

    def close(self) -> None:
        self.stop_heartbeat()
        self._sock.close()
