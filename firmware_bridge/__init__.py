"""firmware_bridge: the scanner and I/O-board side of smartscreen.

GigE Vision (GVCP control, GVSP streaming with packet resend) for the dual-energy line-scan
detector, the framed serial link to the I/O board, emulators of both devices that speak the
same protocols over loopback sockets and pseudo-terminals, and parcel assembly. Never imports
``smartscreen``. The wire contract is ``firmware_bridge/SPEC.md``.

Public names are imported lazily so ``firmware_bridge.lines`` (used by the domain) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "LineBlock": "firmware_bridge.lines",
    "LineKind": "firmware_bridge.lines",
    "GigeLineSource": "firmware_bridge.gige_receiver",
    "GvspReceiver": "firmware_bridge.gige_receiver",
    "ResendTiming": "firmware_bridge.gige_receiver",
    "GvcpClient": "firmware_bridge.gige_client",
    "GigeError": "firmware_bridge.gige_client",
    "discover": "firmware_bridge.gige_client",
    "IoBoardLink": "firmware_bridge.iolink",
    "IoLinkError": "firmware_bridge.iolink",
    "ScannerEmulator": "firmware_bridge.scanner_emulator",
    "FaultConfig": "firmware_bridge.scanner_emulator",
    "IoBoardEmulator": "firmware_bridge.ioboard_emulator",
    "GateRecord": "firmware_bridge.ioboard_emulator",
    "BeltPlan": "firmware_bridge.belt_plan",
    "PlannedParcel": "firmware_bridge.belt_plan",
    "uniform_references": "firmware_bridge.belt_plan",
    "BeltClock": "firmware_bridge.belt_clock",
    "ParcelAssembler": "firmware_bridge.assembly",
    "AssembledParcel": "firmware_bridge.assembly",
    "AssemblerConfig": "firmware_bridge.assembly",
    "EmulatedLine": "firmware_bridge.emulate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'firmware_bridge' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
