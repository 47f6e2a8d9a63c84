"""The reject gate: deadline timing, the gate controller (fail-closed), PLC records and drivers."""

from smartscreen.gate.controller import GateController, GateOutcome, GateStatus
from smartscreen.gate.plc import EmulatedPlc, GateResult
from smartscreen.gate.records import AckStatus, DecisionRecord, PlcMode, parcel_key
from smartscreen.gate.timing import GateTiming

__all__ = [
    "AckStatus",
    "DecisionRecord",
    "EmulatedPlc",
    "GateController",
    "GateOutcome",
    "GateResult",
    "GateStatus",
    "GateTiming",
    "PlcMode",
    "parcel_key",
]
