"""Second look: a small crop classifier that re-scores the detector's candidate boxes.

The detector sees the whole parcel at its nominal input (448 px long side), where a lighter in a
1,280-channel scan is a few dozen pixels among clutter, and its most confident false alarms on clean
parcels set the operating threshold. The verifier looks again at each candidate box: a square crop
around the box (``context`` times its longer side, from the source image at its own resolution),
resized to ``crop_px``, classified into the detector's classes plus background. The candidate's score
becomes the weighted geometric mean of the detector's score and the verifier's probability of the
same class::

    score = detector_score ** (1 - weight) * verifier_probability ** weight

so a box both stages believe keeps its score and a box the verifier calls background falls. Only the
``max_candidates`` highest-scoring boxes at or above ``min_score`` are looked at; the rest are dropped
(they are far below any operating threshold).

The verifier lives in the model package (``verifier.onnx``, described by ``model.yaml``'s ``verifier:``
section with its sha256); the operating threshold recorded in the package is measured with it.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.detection.package import (
    ModelPackage,
    VerifierSpec,
    load_model_package,
    sha256_file,
    update_model_package,
)
from smartscreen.domain.detections import Detections
from smartscreen.errors import InferenceError, ModelPackageError

logger = logging.getLogger(__name__)

# air in the pseudo-colour image is white: crops that reach past the image edge are padded with it
CROP_PAD_VALUE = 255
MIN_CROP_SIDE_PX = 16


class _SessionLike(Protocol):
    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> Sequence[Any]: ...

    def get_inputs(self) -> Sequence[Any]: ...


def crop_square(
    image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32], crop_px: int, context: float
) -> npt.NDArray[np.uint8]:
    """``(n, crop_px, crop_px, 3)`` uint8 crops: a square of side ``context`` x the box's longer side (at least
    ``MIN_CROP_SIDE_PX``) centred on each box, padded with white where it leaves the image, resized to ``crop_px``."""
    h, w = int(image.shape[0]), int(image.shape[1])
    out = np.empty((len(xyxy), crop_px, crop_px, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, np.float64)):
        side = max(float(max(x2 - x1, y2 - y1)) * context, float(MIN_CROP_SIDE_PX))
        half = side / 2.0
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        sx0, sy0 = round(cx - half), round(cy - half)
        s = max(round(side), 1)
        region = np.full((s, s, 3), CROP_PAD_VALUE, np.uint8)
        ix0, iy0 = max(sx0, 0), max(sy0, 0)
        ix1, iy1 = min(sx0 + s, w), min(sy0 + s, h)
        if ix1 > ix0 and iy1 > iy0:
            region[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = image[iy0:iy1, ix0:ix1]
        interpolation = cv2.INTER_AREA if s > crop_px else cv2.INTER_LINEAR
        out[k] = cv2.resize(region, (crop_px, crop_px), interpolation=interpolation)
    return out


def crops_to_tensor(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``(n, 3, s, s)`` float32 in [0, 1] from ``(n, s, s, 3)`` uint8 RGB crops (the verifier's input)."""
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1.0 / 255.0)


def fuse_scores(
    detector_scores: npt.NDArray[np.float32], verifier_probabilities: npt.NDArray[np.float32], weight: float
) -> npt.NDArray[np.float32]:
    """Weighted geometric mean of the two stages' scores (``weight`` on the verifier)."""
    d = np.clip(detector_scores.astype(np.float64), 0.0, 1.0)
    v = np.clip(verifier_probabilities.astype(np.float64), 0.0, 1.0)
    return (d ** (1.0 - weight) * v**weight).astype(np.float32)


class Verifier:
    """The package's crop classifier on onnxruntime; :meth:`rescore` is all the engine calls."""

    def __init__(self, session: _SessionLike, spec: VerifierSpec, class_names: tuple[str, ...]) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelPackageError(f"the verifier has {len(inputs)} inputs; it takes exactly one batch of crops")
        self._session = session
        self._input_name = str(inputs[0].name)
        self.spec = spec
        self.class_names = class_names
        self._lock = threading.Lock()

    @classmethod
    def from_package(cls, package: ModelPackage, intra_op_threads: int = 2) -> Verifier | None:
        """The package's verifier, or None when it has none; checks the file against the recorded sha256."""
        spec = package.manifest.verifier
        if spec is None:
            return None
        if package.manifest.input.image != "pseudo_colour":
            raise ModelPackageError(
                f"{package.manifest_path}: a verifier crops the pseudo-colour image, but this detector takes "
                f"{package.manifest.input.image}"
            )
        path = package.directory / spec.file
        if not path.is_file():
            raise ModelPackageError(f"{package.manifest_path} names a verifier {spec.file} that is not in the package")
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise ModelPackageError(
                f"{path} has sha256 {actual} but {package.manifest_path} records {spec.sha256}: restore the right "
                "verifier file or re-run `smartscreen verifier`"
            )
        import onnxruntime as ort

        from smartscreen.detection.engine import session_options

        try:
            session = ort.InferenceSession(
                str(path), session_options(intra_op_threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's own error types (corrupt graph)
            raise ModelPackageError(f"onnxruntime cannot load the verifier {path}: {e}") from e
        verifier = cls(session, spec, package.class_names)
        verifier.check()
        return verifier

    def check(self) -> None:
        """Run one blank crop and check the output has one column per class plus background."""
        probabilities = self.classify(np.full((1, self.spec.crop_px, self.spec.crop_px, 3), 128, np.uint8))
        if probabilities.shape != (1, len(self.class_names) + 1):
            raise ModelPackageError(
                f"the verifier outputs {probabilities.shape[1:]} per crop; {len(self.class_names)} classes "
                "plus background needed"
            )

    def classify(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """``(n, classes + 1)`` probabilities (softmax; last column background) for ``(n, s, s, 3)`` crops."""
        if len(crops) == 0:
            return np.zeros((0, len(self.class_names) + 1), np.float32)
        with self._lock:
            try:
                outputs = self._session.run(None, {self._input_name: crops_to_tensor(crops)})
            except Exception as e:  # onnxruntime raises its own error types; the caller fails closed
                raise InferenceError(f"verifier failed on {len(crops)} crops: {e}") from e
        logits = np.asarray(outputs[0], np.float64)
        if logits.ndim != 2 or logits.shape[0] != len(crops):
            raise InferenceError(f"verifier output shape {logits.shape} does not fit {len(crops)} crops")
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probabilities: npt.NDArray[np.float32] = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return probabilities

    def rescore(self, image: npt.NDArray[np.uint8], detections: Detections) -> Detections:
        """``detections`` of ``image`` with the fused scores: the top ``max_candidates`` at or above ``min_score``
        re-scored, the rest dropped, sorted by the new score."""
        spec = self.spec
        order = np.argsort(-detections.scores, kind="stable")
        order = order[detections.scores[order] >= spec.min_score][: spec.max_candidates]
        if len(order) == 0:
            return Detections.empty(detections.class_names, detections.model_id)
        xyxy = detections.xyxy[order]
        probabilities = self.classify(crop_square(image, xyxy, spec.crop_px, spec.context))
        class_ids = detections.class_ids[order]
        if spec.evidence == "class":
            evidence = probabilities[np.arange(len(order)), class_ids]
        else:
            evidence = 1.0 - probabilities[:, -1]
        scores = fuse_scores(detections.scores[order], evidence.astype(np.float32), spec.weight)
        keep = np.argsort(-scores, kind="stable")
        return Detections(
            xyxy=np.ascontiguousarray(xyxy[keep]),
            scores=np.ascontiguousarray(scores[keep]),
            class_ids=np.ascontiguousarray(class_ids[keep]),
            class_names=detections.class_names,
            model_id=detections.model_id,
        )


def attach_verifier(
    package_dir: Path, onnx_file: Path, spec: VerifierSpec, *, version: str | None = None
) -> ModelPackage:
    """Copy ``onnx_file`` into the package as ``spec.file``, record ``spec`` (with its sha256) in ``model.yaml``,
    drop the recorded metrics (they were measured without this verifier) and load the verifier once to check it."""
    package = load_model_package(package_dir, check_onnx=False)
    target = package.directory / spec.file
    if onnx_file.resolve() != target.resolve():
        shutil.copyfile(onnx_file, target)
    spec = spec.model_copy(update={"sha256": sha256_file(target)})
    updated = update_model_package(package.directory, verifier=spec, version=version, clear_metrics=True)
    if Verifier.from_package(updated, intra_op_threads=1) is None:
        raise ModelPackageError(f"{package.directory}: the verifier did not load after attaching it")
    return updated
