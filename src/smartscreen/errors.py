"""Exception hierarchy: one root, one subclass per boundary. Messages say what to do next."""

from __future__ import annotations


class SmartScreenError(Exception):
    """Root of every error smartscreen raises on purpose."""


class ConfigError(SmartScreenError):
    """The configuration file is missing, malformed or invalid."""


class MissingDependencyError(SmartScreenError):
    """An optional extra is needed; the message names it."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the optional '{extra}' extra: pip install 'smartscreen[{extra}]'")
        self.extra = extra


class ImagingError(SmartScreenError):
    """Raw scan data cannot be calibrated or rendered (wrong shape, dtype, saturation, calibration)."""


class CalibrationError(ImagingError):
    """Dark or air calibration is missing or does not fit the scan."""


class ModelPackageError(SmartScreenError):
    """A model package under models/ is incomplete or inconsistent."""


class InferenceError(SmartScreenError):
    """The detector failed or stalled for a batch."""


class WaybillServiceError(SmartScreenError):
    """The waybill service could not answer (timeout, connection, bad response)."""


class GateError(SmartScreenError):
    """The reject gate did not accept or acknowledge a command."""


class StorageError(SmartScreenError):
    """The audit journal or image store failed."""


class DatasetError(SmartScreenError):
    """A dataset or annotation file is broken."""
