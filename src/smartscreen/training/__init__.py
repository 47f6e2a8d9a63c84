"""Training and evaluation: dataset converters, ultralytics retraining, ONNX export, evaluation.

Everything here except :mod:`smartscreen.training.trainer` and :mod:`smartscreen.training.export`
works without the ``train`` extra: converters, statistics, merging and evaluation need only
numpy, OpenCV and onnxruntime. torch and ultralytics are imported lazily, inside functions,
and only in this package (an import-linter contract enforces it).

Modules:
    samples     labelled images and the issues found while reading them (pure types)
    classmap    source-dataset class names -> project taxonomy (YAML maps in datasets/class-maps/)
    readers     COCO JSON, Pascal VOC XML, OPIXray/HiXray text, YOLO, smartscreen synth output
    writer      one YOLO-format dataset with data.yaml; RGBA, grey and 16-bit images normalised
    datayaml    data.yaml model, dataset fingerprint (sha256)
    stats       counts per class, box sizes, a plot
    merge       several YOLO datasets -> one
    verdicts    operator verdicts -> YOLO labels for retraining
    augment     X-ray-safe photometric augmentation (no hue jitter)
    trainer     ultralytics training from a model YAML (lazy torch import)
    export      ONNX export -> models/NAME/ package (through smartscreen.detection.package)
    metrics     AP, PR curves, operating point (pure numpy)
    evaluate    runs a model package through the detection engine and reports metrics
"""

from __future__ import annotations
