"""Translating ``firmware_bridge`` messages and parcels into ``smartscreen.domain`` facts.

The bridge never imports smartscreen; this module is the one place that knows both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.assembly import AssembledParcel
from firmware_bridge.messages import (
    BarcodeReadMsg,
    BeltStateMsg,
    EncoderTickMsg,
    GateAckMsg,
    GeneratorStatusMsg,
    PhotoEyeEdgeMsg,
)
from smartscreen.domain.decision import Route
from smartscreen.domain.io import BeltState, EncoderTick, GateAck, GeneratorStatus, PhotoEyeEdge
from smartscreen.domain.scan import LineRange, ParcelScan
from smartscreen.domain.waybill import BarcodeRead


def parcel_id_for(line_id: str, parcel_seq: int) -> str:
    """``<line_id>-<board parcel sequence>``: the gate drivers key the PLC/board by that number."""
    return f"{line_id}-{parcel_seq}"


@dataclass(frozen=True, slots=True)
class TrackedEdge:
    """An entry photo-eye edge with the board's parcel tracking number."""

    edge: PhotoEyeEdge
    parcel_seq: int


def photo_eye(msg: PhotoEyeEdgeMsg) -> TrackedEdge:
    return TrackedEdge(PhotoEyeEdge(msg.eye_id, msg.blocked, msg.encoder_counts, msg.at_ns), msg.parcel_seq)


def barcode_reads(msg: BarcodeReadMsg) -> list[BarcodeRead]:
    """One :class:`BarcodeRead` per code the reader reported (none for a no-read)."""
    return [BarcodeRead(code, msg.at_ns, msg.encoder_counts, f"reader-{msg.reader_id}") for code in msg.codes]


def encoder_tick(msg: EncoderTickMsg) -> EncoderTick:
    return EncoderTick(msg.encoder_counts, msg.at_ns)


def belt_state(msg: BeltStateMsg) -> BeltState:
    return BeltState(msg.running, msg.speed_mm_s, msg.at_ns)


def generator_status(msg: GeneratorStatusMsg) -> GeneratorStatus:
    return GeneratorStatus(msg.xray_on, msg.interlock_closed, msg.kv, msg.ma, msg.at_ns)


def gate_ack(msg: GateAckMsg, parcel_id: str) -> GateAck:
    return GateAck(parcel_id, msg.sequence, msg.accepted, Route.REJECT if msg.divert else Route.CLEAR, msg.at_ns)


def parcel_scan(parcel: AssembledParcel, *, line_id: str, channel_pitch_mm: float) -> ParcelScan:
    """An assembled parcel as the domain's :class:`ParcelScan` (missing lines stay listed, never filled)."""
    return ParcelScan(
        parcel_id=parcel_id_for(line_id, parcel.parcel_seq),
        line_id=line_id,
        high=parcel.high,
        low=parcel.low,
        first_line_index=parcel.first_line_index,
        entry_encoder_counts=parcel.entry_encoder_counts,
        belt_position_mm=parcel.belt_position_mm,
        entered_at_ns=parcel.entered_at_ns,
        line_pitch_mm=parcel.line_pitch_mm,
        channel_pitch_mm=channel_pitch_mm,
        missing_lines=tuple(LineRange(a, b) for a, b in parcel.missing_lines if b > a),
        truncated=parcel.truncated,
    )
