"""Personal data masking for logs, the journal and the API (GB/T 41833-2022: hide or encrypt PII)."""

from __future__ import annotations

from dataclasses import replace

from smartscreen.domain.waybill import Waybill


def masked_waybill(waybill: Waybill) -> Waybill:
    """A copy whose personal data is masked (first character of names, last four phone digits, region only)."""
    return replace(waybill, pii=waybill.pii.masked())


def log_ref(waybill: Waybill | None, tracking_no: str = "") -> str:
    """What a log line may say about a waybill: the tracking number and carrier, never personal data."""
    if waybill is None:
        return f"waybill {tracking_no or '?'} (not found)"
    return f"waybill {waybill.tracking_no} ({waybill.carrier_code})"
