"""Reject-gate drivers behind :class:`smartscreen.domain.ports.GateActuator`.

- :class:`PlcSimGate`: the in-process emulated PLC (``plc-sim://``).
- :class:`ModbusGate`: a PLC over Modbus TCP (``modbus://host:port?unit=1``, the ``modbus`` extra),
  writing one decision record per parcel in a single FC16 request and reading back the PLC's
  acknowledgement; :class:`ModbusPlcServer` serves an :class:`EmulatedPlc` over Modbus TCP.
- :class:`IoBoardGate`: the scanner's I/O board through ``firmware_bridge`` (``ioboard://``).

Heartbeats run both ways: each driver writes its counter every period from its own thread and
watches the PLC's counter; :meth:`link_alive` turns False when the PLC's counter stops for
``trip_periods`` periods (the PLC, for its part, goes all-reject when ours stops).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smartscreen.domain.decision import Route
from smartscreen.domain.io import GateAck, GateCommand
from smartscreen.errors import GateError, MissingDependencyError
from smartscreen.gate.plc import EmulatedPlc
from smartscreen.gate.records import (
    BRIDGE_HEARTBEAT_ADDRESS,
    RECORD_ADDRESS,
    RECORD_REGISTERS,
    REGISTER_SPACE,
    STATUS_ADDRESS,
    STATUS_REGISTERS,
    AckStatus,
    DecisionRecord,
    parcel_key,
)

if TYPE_CHECKING:
    from firmware_bridge.iolink import IoBoardLink

logger = logging.getLogger(__name__)


class _Heartbeat:
    """Sends our counter and watches the peer's, from one thread per link."""

    def __init__(
        self,
        name: str,
        send: Callable[[int], None],
        read_peer: Callable[[], int | None],
        period_s: float,
        trip_periods: int,
    ) -> None:
        self._send = send
        self._read_peer = read_peer
        self._period_s = period_s
        self._trip_s = period_s * trip_periods
        self._counter = 0
        self._peer: int | None = None
        self._peer_changed_s = time.monotonic()
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def start(self) -> None:
        self._peer_changed_s = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self._counter = (self._counter + 1) & 0xFFFF
            try:
                self._send(self._counter)
                peer = self._read_peer()
            except (GateError, OSError) as e:
                self.errors += 1
                logger.debug("heartbeat failed: %s", e)
                continue
            if peer is not None and peer != self._peer:
                self._peer = peer
                self._peer_changed_s = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._peer_changed_s <= self._trip_s

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)


def _ack(command: GateCommand, status: AckStatus) -> GateAck:
    return GateAck(
        parcel_id=command.parcel_id,
        sequence=command.sequence,
        accepted=status is AckStatus.ACCEPTED,
        route=command.route,
        at_ns=time.time_ns(),
    )


class PlcSimGate:
    """The emulated PLC, in process."""

    def __init__(self, plc: EmulatedPlc, *, heartbeat_period_ms: float = 100.0, trip_periods: int = 3) -> None:
        self.plc = plc
        self._heartbeat = _Heartbeat(
            "plc-sim", plc.write_heartbeat, lambda: plc.status_registers()[2], heartbeat_period_ms / 1000, trip_periods
        )
        self._heartbeat.start()

    def command(self, command: GateCommand, timeout_s: float) -> GateAck:
        record = DecisionRecord(parcel_key(command.parcel_id), command.sequence, command.route, None)
        return _ack(command, self.plc.write_record(record.registers()))

    def link_alive(self) -> bool:
        return self._heartbeat.alive()

    def close(self) -> None:
        self._heartbeat.stop()


class ModbusGate:
    """A sorter PLC over Modbus TCP (pymodbus, the ``modbus`` extra)."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        unit: int = 1,
        timeout_s: float = 0.2,
        heartbeat_period_ms: float = 100.0,
        trip_periods: int = 3,
    ) -> None:
        try:
            from pymodbus.client import ModbusTcpClient
        except ImportError as e:
            raise MissingDependencyError("the Modbus TCP gate driver", "modbus") from e
        # pymodbus traces every failed transaction on stdout/log; our own errors say what matters
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        # the per-request timeout bounds one Modbus exchange; command() bounds the whole acknowledgement
        self._client = ModbusTcpClient(host, port=port, timeout=max(timeout_s, 0.5), retries=0, reconnect_delay=0.1)
        self._unit = unit
        self._lock = threading.Lock()
        self.address = f"{host}:{port}"
        self._heartbeat = _Heartbeat(
            f"modbus-{port}", self._write_heartbeat, self._read_plc_heartbeat, heartbeat_period_ms / 1000, trip_periods
        )
        self._heartbeat.start()

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from pymodbus.exceptions import ModbusException

        with self._lock:
            try:
                if not self._client.connected and not self._client.connect():  # type: ignore[no-untyped-call]
                    raise GateError(f"cannot connect to the PLC at {self.address}")
                response = fn()
            except ModbusException as e:
                self._client.close()  # type: ignore[no-untyped-call]
                raise GateError(f"Modbus {what} to {self.address} failed: {e}") from e
        if response.isError():
            raise GateError(f"PLC at {self.address} refused {what}: {response}")
        return response

    def _write_heartbeat(self, counter: int) -> None:
        self._call(
            "heartbeat",
            lambda: self._client.write_register(BRIDGE_HEARTBEAT_ADDRESS, counter, device_id=self._unit),
        )

    def _read_status(self) -> list[int]:
        response = self._call(
            "status read",
            lambda: self._client.read_holding_registers(STATUS_ADDRESS, count=STATUS_REGISTERS, device_id=self._unit),
        )
        return list(response.registers)

    def _read_plc_heartbeat(self) -> int:
        return self._read_status()[2]

    def command(self, command: GateCommand, timeout_s: float) -> GateAck:
        record = DecisionRecord(parcel_key(command.parcel_id), command.sequence, command.route, None)
        deadline = time.monotonic() + timeout_s
        self._call(
            "decision write",
            lambda: self._client.write_registers(RECORD_ADDRESS, record.registers(), device_id=self._unit),
        )
        while True:
            status = self._read_status()
            if status[0] == record.sequence & 0xFFFF and status[1] != AckStatus.NONE:
                return _ack(command, AckStatus(status[1]))
            if time.monotonic() >= deadline:
                raise GateError(f"PLC at {self.address} did not acknowledge record {record.sequence} in time")
            time.sleep(0.0005)

    def link_alive(self) -> bool:
        return self._heartbeat.alive()

    def close(self) -> None:
        self._heartbeat.stop()
        with self._lock:
            self._client.close()  # type: ignore[no-untyped-call]


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ModbusPlcServer:
    """Serves an :class:`EmulatedPlc` over Modbus TCP (pymodbus server in its own thread and event loop)."""

    def __init__(self, plc: EmulatedPlc, host: str = "127.0.0.1", port: int = 0, unit: int = 1) -> None:
        try:
            import pymodbus  # noqa: F401
        except ImportError as e:
            raise MissingDependencyError("the Modbus PLC emulator", "modbus") from e
        self.plc = plc
        self.host = host
        self.port = port or free_tcp_port(host)
        self.unit = unit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"modbus-plc-{self.port}", daemon=True)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if set_values is not None:
            values = [int(v) for v in set_values]
            if address == RECORD_ADDRESS and len(values) == RECORD_REGISTERS:
                self.plc.write_record(values)
            elif address == BRIDGE_HEARTBEAT_ADDRESS and len(values) == 1:
                self.plc.write_heartbeat(values[0])
            return None
        if address <= STATUS_ADDRESS + STATUS_REGISTERS and address + count > STATUS_ADDRESS:
            for i, value in enumerate(self.plc.status_registers()):
                index = STATUS_ADDRESS + i - start_address
                if 0 <= index < len(current_registers):
                    current_registers[index] = value
        return None

    def _run(self) -> None:
        async def main() -> None:
            from pymodbus.server import ModbusTcpServer
            from pymodbus.simulator import DataType, SimData, SimDevice

            device = SimDevice(
                id=self.unit,
                simdata=[SimData(0, count=REGISTER_SPACE, values=0, datatype=DataType.REGISTERS)],
                action=self._action,
            )
            self._server = ModbusTcpServer(device, address=(self.host, self.port))
            await self._server.serve_forever(background=True)
            self._ready.set()
            await self._server.serving

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        except Exception as e:  # reported by start()
            self._error = e
            logger.exception("Modbus PLC emulator failed")
            self._ready.set()
        finally:
            self._loop.close()

    def start(self) -> ModbusPlcServer:
        self._thread.start()
        if not self._ready.wait(5) or self._error is not None:
            raise GateError(f"Modbus PLC emulator did not start on {self.host}:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(timeout=5)
        self._thread.join(timeout=5)


class IoBoardGate:
    """The reject gate wired to the scanner's I/O board, commanded through ``firmware_bridge``.

    The board owns the link (heartbeat, retransmit); its gate emulator applies the fail-secure
    default itself when no command arrives in time.
    """

    def __init__(self, link: IoBoardLink) -> None:
        self._link = link

    def command(self, command: GateCommand, timeout_s: float) -> GateAck:
        try:
            ack = self._link.send_gate_command(
                parcel_key(command.parcel_id),
                divert=command.route.diverts,
                sequence=command.sequence,
                deadline_ns=command.deadline_ns,
                timeout_s=timeout_s,
            )
        except GateError:
            raise
        except Exception as e:  # the bridge's own link errors: the caller fails closed
            raise GateError(f"I/O board gate command failed: {type(e).__name__}: {e}") from e
        route = command.route if ack.divert == command.route.diverts else (Route.REJECT if ack.divert else Route.CLEAR)
        return GateAck(
            parcel_id=command.parcel_id,
            sequence=command.sequence,
            accepted=bool(ack.accepted),
            route=route,
            at_ns=int(ack.at_ns),
        )

    def link_alive(self) -> bool:
        return bool(self._link.link_alive())

    def close(self) -> None:
        """The link belongs to the line's I/O stage, which closes it."""
