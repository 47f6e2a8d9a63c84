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
    load_model_package,
    update_model_package,
    write_model_package,
)

__all__ = [
    "CropSpec",
    "InputSpec",
    "Metrics",
    "ModelManifest",
    "ModelPackage",
    "NmsDefaults",
    "Normalisation",
    "OutputSpec",
    "TrainingInfo",
    "load_model_package",
    "update_model_package",
    "write_model_package",
]
