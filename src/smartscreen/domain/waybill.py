"""Waybill value objects (canonical schema of shared/reference/waybill.md, section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class DeclaredItem:
    """One line of the waybill's contents zone."""

    name: str
    category_code: str = ""
    quantity: int = 1
    value_cny: float = 0.0


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Names, phones and addresses. Never logged, never returned unmasked by the API."""

    sender_name: str = ""
    sender_phone: str = ""
    sender_address: str = ""
    recipient_name: str = ""
    recipient_phone: str = ""
    recipient_address: str = ""

    def masked(self) -> PersonalData:
        """First character of names, last four digits of phones, region only of addresses."""
        return PersonalData(
            sender_name=mask_name(self.sender_name),
            sender_phone=mask_phone(self.sender_phone),
            sender_address=mask_address(self.sender_address),
            recipient_name=mask_name(self.recipient_name),
            recipient_phone=mask_phone(self.recipient_phone),
            recipient_address=mask_address(self.recipient_address),
        )

    def __repr__(self) -> str:  # keeps PII out of logs and tracebacks
        return "PersonalData(<masked>)"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 0) if name else ""


def mask_phone(phone: str) -> str:
    digits = [c for c in phone if c.isdigit()]
    if not digits:
        return ""
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def mask_address(address: str) -> str:
    """Keep the first 6 characters (province/city in Chinese addresses), mask the rest."""
    return address[:6] + "***" if len(address) > 6 else ("***" if address else "")


@dataclass(frozen=True, slots=True)
class Waybill:
    """The canonical waybill record fused with a parcel's scan.

    Weights in grams, dimensions in millimetres. ``sender_id`` is an opaque
    account reference (not personal data) used for sender history and risk lists.
    """

    tracking_no: str
    carrier_code: str
    declared_items: tuple[DeclaredItem, ...] = ()
    declared_weight_g: int | None = None
    measured_weight_g: int | None = None
    dims_mm: tuple[int, int, int] | None = None
    origin_region_code: str = ""
    dest_region_code: str = ""
    route_label: str = ""
    sender_id: str = ""
    sender_prior_parcels: int = 0
    sender_prior_alarms: int = 0
    insured: bool = False
    cash_on_delivery: bool = False
    real_name_verified: bool = True
    pii: PersonalData = field(default_factory=PersonalData, repr=False)

    def __post_init__(self) -> None:
        if not self.tracking_no:
            raise ValueError("tracking_no must not be empty")
        for name, value in (
            ("declared_weight_g", self.declared_weight_g),
            ("measured_weight_g", self.measured_weight_g),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


class BarcodeMatch(StrEnum):
    """Outcome of associating upstream barcode reads with a parcel scan."""

    MATCHED = "matched"
    NO_READ = "no_read"
    MULTI_READ = "multi_read"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class BarcodeRead:
    """A barcode read by the upstream scanner, with where the belt was when it was read."""

    code: str
    read_at_ns: int
    encoder_counts: int
    reader_id: str = "upstream"
