"""Pure domain types and ports. Standard library and numpy only: no I/O, threads or clocks."""

from smartscreen.domain.decision import Decision, Reason, ReasonCode, RiskAssessment, Route
from smartscreen.domain.detections import Detections
from smartscreen.domain.events import (
    DeadlineMissed,
    GateAcknowledged,
    GateCommanded,
    OperatorVerdict,
    ParcelDecided,
    ParcelDetected,
    ParcelEntered,
    ParcelEvent,
    ParcelScanned,
    VerdictBox,
    VerdictKind,
    WaybillMatched,
)
from smartscreen.domain.io import BeltState, EncoderTick, GateAck, GateCommand, GeneratorStatus, IoEvent, PhotoEyeEdge
from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.domain.scan import LineBlock, LineRange, ParcelScan
from smartscreen.domain.waybill import BarcodeMatch, BarcodeRead, DeclaredItem, PersonalData, Waybill

__all__ = [
    "BarcodeMatch",
    "BarcodeRead",
    "BeltState",
    "DeadlineMissed",
    "Decision",
    "DeclaredItem",
    "Detections",
    "EncoderTick",
    "GateAck",
    "GateAcknowledged",
    "GateCommand",
    "GateCommanded",
    "GeneratorStatus",
    "IoEvent",
    "LineBlock",
    "LineRange",
    "MaterialClass",
    "OperatorVerdict",
    "ParcelDecided",
    "ParcelDetected",
    "ParcelEntered",
    "ParcelEvent",
    "ParcelScan",
    "ParcelScanned",
    "PersonalData",
    "PhotoEyeEdge",
    "Reason",
    "ReasonCode",
    "RenderedScan",
    "RiskAssessment",
    "Route",
    "VerdictBox",
    "VerdictKind",
    "Waybill",
    "WaybillMatched",
]
