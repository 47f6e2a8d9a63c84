"""The ONNX detector: model package -> onnxruntime session -> letterbox, batched inference, decode, NMS.

:class:`OnnxDetector` implements :class:`smartscreen.domain.ports.Detector`. Its
``__init__`` takes ready objects (a session, a package), so tests can hand it a
fake or deliberately slow session; :meth:`OnnxDetector.from_package` does the I/O.
Calls are serialised by a lock (one session, one preallocated input buffer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from smartscreen.config import DetectorConfig
from smartscreen.detection.package import ModelPackage, TtaMode, TtaSpec, check_session, load_model_package
from smartscreen.detection.postprocess import (
    TTA_VIEW_SCORE_FLOOR,
    NmsParams,
    RawDetections,
    decode_yolo_v8,
    from_view,
    fuse_views,
    to_detections,
)
from smartscreen.detection.preprocess import (
    BatchBuffer,
    Letterbox,
    content_box,
    plan_letterbox,
    scan_foreground,
    scan_image,
)
from smartscreen.detection.verifier import Verifier
from smartscreen.domain.detections import Detections
from smartscreen.domain.render import RenderedScan
from smartscreen.errors import InferenceError, ModelPackageError

logger = logging.getLogger(__name__)

ProviderName = Literal["cpu", "cuda", "tensorrt"]
# How images of different input sizes share a batch:
#   "group": only images of the same input size run together (each at its own, smallest, size); best on CPU,
#            where batching brings no throughput but padding costs compute;
#   "pad":   the batch takes the largest size and smaller images are padded; fewer, larger calls (GPU);
#   "auto":  "group" on the CPU provider, "pad" otherwise.
ShapePolicy = Literal["auto", "group", "pad"]

ORT_PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class InferenceSessionLike(Protocol):
    """What the engine needs from an ``onnxruntime.InferenceSession``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> Sequence[Any]: ...

    def get_inputs(self) -> Sequence[Any]: ...

    def get_outputs(self) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Wall time of the last call, split by stage, in milliseconds."""

    batch_size: int
    input_hw: tuple[int, int]
    views: int  # inferences per image (test-time augmentation)
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    verify_ms: float = 0.0  # the second-look crop classifier, when the package has one

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms + self.verify_ms


@dataclass(slots=True)
class StageTotals:
    """Cumulative wall time per stage since the last reset (for metrics and benchmarks)."""

    calls: int = 0
    images: int = 0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    verify_ms: float = 0.0

    def add(self, t: StageTimes) -> None:
        self.calls += 1
        self.images += t.batch_size
        self.preprocess_ms += t.preprocess_ms
        self.inference_ms += t.inference_ms
        self.postprocess_ms += t.postprocess_ms
        self.verify_ms += t.verify_ms

    def per_image_ms(self) -> dict[str, float]:
        n = max(self.images, 1)
        return {
            "preprocess_ms": self.preprocess_ms / n,
            "inference_ms": self.inference_ms / n,
            "postprocess_ms": self.postprocess_ms / n,
            "verify_ms": self.verify_ms / n,
        }


def resolve_providers(
    requested: Sequence[str], available: Sequence[str], device_id: int = 0
) -> list[str | tuple[str, dict[str, str]]]:
    """onnxruntime provider list for ``requested`` (names in order of preference: cpu, cuda, tensorrt).

    Unavailable providers are skipped with a warning that says how to get them; if
    none of the requested ones is available an :class:`InferenceError` says so.
    """
    if not requested:
        raise InferenceError("no execution provider requested; use e.g. providers=('cpu',)")
    chosen: list[str | tuple[str, dict[str, str]]] = []
    missing: list[str] = []
    for name in requested:
        ort_name = ORT_PROVIDERS.get(name)
        if ort_name is None:
            raise InferenceError(f"unknown execution provider {name!r}; choose from {sorted(ORT_PROVIDERS)}")
        if ort_name not in available:
            missing.append(name)
            continue
        if name in ("cuda", "tensorrt"):
            chosen.append((ort_name, {"device_id": str(device_id)}))
        else:
            chosen.append(ort_name)
    if missing:
        hint = (
            "this onnxruntime build offers only "
            + ", ".join(available)
            + "; for cuda/tensorrt install onnxruntime-gpu (and CUDA/cuDNN, TensorRT) on a machine with an NVIDIA GPU"
        )
        if not chosen:
            raise InferenceError(f"execution provider(s) {', '.join(missing)} not available: {hint}")
        logger.warning("execution provider(s) %s not available, falling back: %s", ", ".join(missing), hint)
    return chosen


def session_options(intra_op_threads: int = 2, inter_op_threads: int = 1, *, spin_wait: bool = False) -> Any:
    """The ``onnxruntime.SessionOptions`` the engine uses (the benchmark's bare loop uses the same)."""
    import onnxruntime as ort

    if intra_op_threads < 1 or inter_op_threads < 1:
        raise InferenceError(f"thread counts must be >= 1, got intra {intra_op_threads}, inter {inter_op_threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin_wait else "0")
    return options


def plan_batches(layouts: Sequence[Letterbox], max_batch: int, policy: ShapePolicy) -> list[list[int]]:
    """Indices of the images that run together, in order; every group has at most ``max_batch`` images."""
    if policy == "pad":
        order = list(range(len(layouts)))
        return [order[i : i + max_batch] for i in range(0, len(order), max_batch)]
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, lb in enumerate(layouts):
        by_shape.setdefault(lb.input_hw, []).append(i)
    return [idx[i : i + max_batch] for idx in by_shape.values() for i in range(0, len(idx), max_batch)]


# (transposed, flip_y, flip_x) of each view: the input tensor as it is, then its mirrors (and transposes)
_FLIPS = ((False, False), (False, True), (True, False), (True, True))
_VIEWS: dict[TtaMode, tuple[tuple[bool, bool, bool], ...]] = {
    "none": ((False, False, False),),
    "h": ((False, False, False), (False, False, True)),
    "hv": tuple((False, fy, fx) for fy, fx in _FLIPS),
    "d4": tuple((t, fy, fx) for t in (False, True) for fy, fx in _FLIPS),
}


class OnnxDetector:
    """YOLO-format ONNX detector on onnxruntime; implements ``smartscreen.domain.ports.Detector``."""

    def __init__(
        self,
        session: InferenceSessionLike,
        package: ModelPackage,
        *,
        conf_threshold: float | None = None,
        iou_threshold: float | None = None,
        max_det: int | None = None,
        max_batch: int = 16,
        shape_policy: ShapePolicy = "auto",
        tta: TtaMode | None = None,
        verifier: Verifier | None = None,
        validate: bool = True,
        warmup: bool = True,
        providers_in_use: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        manifest = package.manifest
        if validate:
            check_session(manifest, session, source=str(package.onnx_path))
        if not manifest.input.dynamic_batch:
            max_batch = 1
        self._session = session
        self.package = package
        self.nms = NmsParams(
            conf=manifest.nms.conf if conf_threshold is None else conf_threshold,
            iou=manifest.nms.iou if iou_threshold is None else iou_threshold,
            max_det=manifest.nms.max_det if max_det is None else max_det,
            class_aware=manifest.nms.class_aware,
        )
        # test-time augmentation: the package's unless overridden (``tta="none"`` turns it off)
        self.tta = manifest.tta if tta is None else TtaSpec(mode=tta, fusion_iou=manifest.tta.fusion_iou)
        h, w = manifest.input.size_hw
        if self.tta.mode == "d4" and not manifest.input.dynamic_hw and h != w:
            raise ModelPackageError(
                f"{package.model_id} takes a fixed {h}x{w} input: its transposed views (tta d4) cannot run; use hv"
            )
        # with a verifier the detector's boxes are candidates: they are decoded from the verifier's floor, and the
        # score floor (self.nms.conf) applies to the fused scores
        self.verifier = verifier
        self._candidate_nms = (
            self.nms if verifier is None else replace(self.nms, conf=min(self.nms.conf, verifier.spec.min_score))
        )
        self._view_nms = replace(self._candidate_nms, conf=min(self._candidate_nms.conf, TTA_VIEW_SCORE_FLOOR))
        self.max_batch = max_batch
        self.providers_in_use = tuple(providers_in_use)
        if shape_policy == "auto":
            on_cpu = self.providers_in_use[:1] == ("CPUExecutionProvider",)
            shape_policy = "group" if on_cpu else "pad"
        self.shape_policy: ShapePolicy = shape_policy
        self._buffer = BatchBuffer(manifest.input, max_batch)
        self._lock = threading.Lock()
        self._input_name = manifest.input.name
        self._output_names = [manifest.output.name]
        self.last_times: StageTimes | None = None
        self.totals = StageTotals()
        self.warmup_ms: float | None = None
        if warmup:
            self.warmup()

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_package(
        cls,
        path: Path | str,
        providers: Sequence[ProviderName | str] = ("cpu",),
        intra_op_threads: int = 2,
        inter_op_threads: int = 1,
        *,
        conf_threshold: float | None = None,
        iou_threshold: float | None = None,
        max_det: int | None = None,
        max_batch: int = 16,
        shape_policy: ShapePolicy = "auto",
        tta: TtaMode | None = None,
        verifier: bool = True,
        device_id: int = 0,
        spin_wait: bool = False,
        warmup: bool = True,
    ) -> OnnxDetector:
        """Load ``path`` (a model package directory), build a session on the preferred provider, check, warm up.

        ``spin_wait`` lets onnxruntime's worker threads busy-wait between operators. It is off by
        default: the detector shares the CPU with the imaging chain and the other stages, and on a
        busy machine spinning threads steal the time they need (measured: about 2x slower inference
        under load with spinning on).
        """
        package = load_model_package(path, check_onnx=False)
        import onnxruntime as ort

        provider_list = resolve_providers(list(providers), ort.get_available_providers(), device_id)
        options = session_options(intra_op_threads, inter_op_threads, spin_wait=spin_wait)
        try:
            session = ort.InferenceSession(str(package.onnx_path), options, providers=provider_list)
        except Exception as e:  # onnxruntime's own error types (missing CUDA libraries, corrupt graph)
            raise ModelPackageError(
                f"onnxruntime cannot load {package.onnx_path} with providers {provider_list}: {e}"
            ) from e
        in_use = session.get_providers()
        second_look = Verifier.from_package(package, intra_op_threads) if verifier else None
        wanted = [p if isinstance(p, str) else p[0] for p in provider_list]
        if wanted[0] not in in_use:
            logger.warning(
                "onnxruntime did not start %s (its libraries are missing or incompatible); running on %s",
                wanted[0],
                ", ".join(in_use),
            )
        return cls(
            session,
            package,
            conf_threshold=conf_threshold,
            iou_threshold=iou_threshold,
            max_det=max_det,
            max_batch=max_batch,
            shape_policy=shape_policy,
            tta=tta,
            verifier=second_look,
            warmup=warmup,
            providers_in_use=in_use,
        )

    @classmethod
    def from_config(cls, config: DetectorConfig, base_dir: Path | None = None) -> OnnxDetector:
        """The detector the line configuration describes (``detector:`` section); relative paths from ``base_dir``."""
        package = config.package if base_dir is None or config.package.is_absolute() else base_dir / config.package
        return cls.from_package(
            package,
            providers=config.providers,
            intra_op_threads=config.intra_op_threads,
            conf_threshold=config.conf_threshold,
            max_batch=config.max_batch,
            tta=None if config.tta == "package" else config.tta,
            verifier=config.verifier == "package",
        )

    def warmup(self, runs: int = 2) -> float:
        """Run the nominal input a few times (allocations, kernel selection); returns the last latency in ms."""
        h, w = self.package.manifest.input.size_hw
        image = np.full((h, w, 3), 128, np.uint8)
        last = 0.0
        for _ in range(runs):
            start = time.perf_counter()
            self._detect([image], [None])
            last = (time.perf_counter() - start) * 1e3
        self.warmup_ms = last
        self.totals = StageTotals()
        return last

    # ----------------------------------------------------------------- Detector port

    @property
    def model_id(self) -> str:
        """``name@version`` for the audit trail; ``+tta.MODE`` appended (semver build metadata) when the line runs
        the model with another test-time augmentation than its package, and so its recorded metrics, say, and
        ``+verifier.off`` when it runs without the package's verifier."""
        mode = self.tta.mode
        suffix = "" if mode == self.package.manifest.tta.mode else f"+tta.{mode}"
        if self.package.manifest.verifier is not None and self.verifier is None:
            suffix += "+verifier.off"
        return self.package.model_id + suffix

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.package.class_names

    def detect(self, scans: Sequence[RenderedScan]) -> list[Detections]:
        """Detections for each rendered scan, boxes in scan pixels; ``InferenceError`` when the model fails."""
        spec = self.package.manifest.input
        images = [scan_image(scan, spec) for scan in scans]
        foregrounds = [scan_foreground(scan) for scan in scans]
        return self._detect(images, foregrounds)

    def detect_images(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections for HxWx3 uint8 RGB images (pseudo-colour), boxes in image pixels."""
        if self.package.manifest.input.image != "pseudo_colour":
            raise InferenceError(
                f"{self.model_id} takes stacked dual-energy channels, not RGB images: call detect() with rendered scans"
            )
        for k, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"image {k} must be an (h, w, 3) uint8 RGB array, got "
                    f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}"
                )
        return self._detect(list(images), [None] * len(images))

    # ----------------------------------------------------------------- internals

    def _detect(
        self, images: list[npt.NDArray[np.uint8]], foregrounds: Sequence[npt.NDArray[np.bool_] | None]
    ) -> list[Detections]:
        if not images:
            return []
        manifest = self.package.manifest
        layouts = [
            plan_letterbox((int(img.shape[0]), int(img.shape[1])), content_box(img, manifest.crop, fg), manifest.input)
            for img, fg in zip(images, foregrounds, strict=True)
        ]
        results: list[Detections | None] = [None] * len(images)
        with self._lock:
            for group in plan_batches(layouts, self.max_batch, self.shape_policy):
                found = self._run_batch([images[i] for i in group], [layouts[i] for i in group])
                for i, detections in zip(group, found, strict=True):
                    results[i] = detections
        return [r for r in results if r is not None]

    def _run_batch(self, images: list[npt.NDArray[np.uint8]], layouts: list[Letterbox]) -> list[Detections]:
        t0 = time.perf_counter()
        batch = self._buffer.fill(images, layouts)
        t1 = time.perf_counter()
        views = _VIEWS[self.tta.mode]
        predictions = [self._infer(batch, *view) for view in views]
        t2 = time.perf_counter()
        input_hw = (int(batch.shape[2]), int(batch.shape[3]))
        results: list[Detections] = []
        for i, lb in enumerate(layouts):
            if len(views) == 1:
                raw = decode_yolo_v8(predictions[0][i], self._candidate_nms)
            else:
                raws: list[RawDetections] = [
                    from_view(
                        decode_yolo_v8(p[i], self._view_nms),
                        input_hw[::-1] if transposed else input_hw,
                        flip_x=flip_x,
                        flip_y=flip_y,
                        transposed=transposed,
                    )
                    for p, (transposed, flip_y, flip_x) in zip(predictions, views, strict=True)
                ]
                raw = fuse_views(raws, iou=self.tta.fusion_iou, conf=self._candidate_nms.conf, max_det=self.nms.max_det)
            results.append(to_detections(raw, lb, self.class_names, self.model_id))
        t3 = time.perf_counter()
        if self.verifier is not None:
            results = [
                rescored.filter(rescored.scores >= self.nms.conf)
                for rescored in (
                    self.verifier.rescore(image, found) for image, found in zip(images, results, strict=True)
                )
            ]
        t4 = time.perf_counter()
        self.last_times = StageTimes(
            batch_size=len(images),
            input_hw=input_hw,
            views=len(views),
            preprocess_ms=(t1 - t0) * 1e3,
            inference_ms=(t2 - t1) * 1e3,
            postprocess_ms=(t3 - t2) * 1e3,
            verify_ms=(t4 - t3) * 1e3,
        )
        self.totals.add(self.last_times)
        return results

    def _infer(
        self, batch: npt.NDArray[np.floating], transposed: bool, flip_y: bool, flip_x: bool
    ) -> npt.NDArray[np.floating]:
        """One session run on a view of ``batch`` (transposed, then mirrored as asked); the checked
        ``(n, 4 + nc, anchors)`` output."""
        n = int(batch.shape[0])
        if transposed:
            batch = batch.transpose(0, 1, 3, 2)
        if transposed or flip_y or flip_x:
            batch = np.ascontiguousarray(batch[:, :, :: -1 if flip_y else 1, :: -1 if flip_x else 1])
        try:
            outputs = self._session.run(self._output_names, {self._input_name: batch})
        except Exception as e:  # onnxruntime raises its own error types; the caller fails closed
            raise InferenceError(f"{self.model_id}: inference failed on a batch of {n}: {e}") from e
        prediction = np.asarray(outputs[0])
        n_rows = 4 + len(self.class_names)
        if prediction.ndim != 3 or prediction.shape[0] != n or prediction.shape[1] != n_rows:
            raise InferenceError(
                f"{self.model_id}: output shape {prediction.shape} does not fit a batch of {n} "
                f"with {len(self.class_names)} classes"
            )
        return prediction

    def input_shape_for(self, image_hw: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
        """The ``(n, 3, H, W)`` tensor shape the engine feeds for full (uncropped) images of these sizes."""
        spec = self.package.manifest.input
        layouts = [plan_letterbox(hw, (0, 0, hw[1], hw[0]), spec) for hw in image_hw]
        return (len(layouts), 3, max(lb.input_hw[0] for lb in layouts), max(lb.input_hw[1] for lb in layouts))

    def plan(self, image: npt.NDArray[np.uint8]) -> Letterbox:
        """The crop and letterbox the engine applies to ``image``."""
        manifest = self.package.manifest
        return plan_letterbox(
            (int(image.shape[0]), int(image.shape[1])), content_box(image, manifest.crop), manifest.input
        )
