"""Detection engine: model packages, ONNX inference with letterbox/NMS, and a deadline-aware micro-batcher.

Heavy modules (onnxruntime) are imported lazily so ``smartscreen.detection.package``
can be used by the exporter without starting a runtime.
"""

from __future__ import annotations

from smartscreen.detection.package import (
    CropSpec,
    InputSpec,
    Metrics,
    ModelManifest,
    ModelPackage,
    NmsDefaults,
    Normalisation,
    OutputSpec,
    TrainingInfo,
    TtaSpec,
    load_model_package,
    update_model_package,
    write_model_package,
)

_LAZY = {
    "OnnxDetector": "smartscreen.detection.engine",
    "MicroBatcher": "smartscreen.detection.batcher",
    "DetectionOutcome": "smartscreen.detection.batcher",
    "DetectionFailure": "smartscreen.detection.batcher",
}


def __getattr__(name: str) -> object:
    """``OnnxDetector`` and the batcher types load on first use (they pull in OpenCV)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smartscreen.detection' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CropSpec",
    "DetectionFailure",
    "DetectionOutcome",
    "InputSpec",
    "Metrics",
    "MicroBatcher",
    "ModelManifest",
    "ModelPackage",
    "NmsDefaults",
    "Normalisation",
    "OnnxDetector",
    "OutputSpec",
    "TrainingInfo",
    "TtaSpec",
    "load_model_package",
    "update_model_package",
    "write_model_package",
]
