"""Model packages: ``models/<name>/`` = ``model.onnx`` + ``model.yaml`` (schema :class:`ModelManifest`).

A package is everything the engine needs to run a detector the way it was trained:
class names, input size and layout, normalisation, which image the model takes,
the output format, NMS defaults, where the training data came from, evaluation
metrics, and the sha256 of ``model.onnx``. :func:`load_model_package` validates all
of it, including the ONNX graph's own input/output signature against the YAML,
and every error says what to fix. :func:`write_model_package` is the one writer
(``smartscreen export`` uses it).

Example ``model.yaml``::

    format_version: 1
    name: smartscreen-yolo11n
    version: 1.0.0
    architecture: yolo11n
    class_names: [baton, pliers, ...]
    input:
      name: images
      size_hw: [640, 640]
      dynamic_batch: true
      dynamic_hw: true
      stride_px: 32
      layout: NCHW
      dtype: float32
      colour_order: RGB
      normalisation: {scale: 0.00392156862745098, mean: [0, 0, 0], std: [1, 1, 1]}
      pad_value: 114
      image: pseudo_colour
    crop: {enabled: true, background_min: 235, margin_px: 16}
    output: {name: output0, format: yolo_v8}
    nms: {conf: 0.25, iou: 0.45, max_det: 300, class_aware: true}
    tta: {mode: hv, fusion_iou: 0.55}   # optional; default none
    training: {data_description: ..., data_sha256: ..., epochs: 30, imgsz: 640}
    metrics: {dataset: synth-val, map50: 0.82, map50_95: 0.57}
    sha256: <hex digest of model.onnx>
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import ModelPackageError
from smartscreen.strict_yaml import load_yaml

MANIFEST_FILE = "model.yaml"
ONNX_FILE = "model.onnx"
FORMAT_VERSION: Literal[1] = 1

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lower-case hex sha256 digest")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Normalisation(_Strict):
    """``x = (pixel * scale - mean[c]) / std[c]`` per channel, in the model's colour order."""

    scale: float = Field(default=1.0 / 255.0, gt=0, description="multiplier applied to the uint8 pixel first")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in value):
            raise ValueError(f"every std must be > 0, got {value}")
        return value

    @property
    def is_plain_scale(self) -> bool:
        """True when normalisation is a single multiply (the fast path)."""
        return self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0)


class InputSpec(_Strict):
    """The model's input tensor and the image it expects."""

    name: str = Field(default="images", min_length=1, description="ONNX input name")
    size_hw: tuple[int, int] = Field(
        default=(640, 640),
        description="nominal input (height, width) in pixels; the longest side of rectangular inputs when dynamic_hw",
    )
    dynamic_batch: bool = Field(default=True, description="the ONNX batch axis is dynamic")
    dynamic_hw: bool = Field(
        default=True, description="height and width are dynamic: rectangular letterboxing (stride multiples) is allowed"
    )
    stride_px: int = Field(default=32, ge=1, le=256, description="height and width must be multiples of this")
    layout: Literal["NCHW"] = "NCHW"
    dtype: Literal["float32", "float16"] = "float32"
    colour_order: Literal["RGB", "BGR"] = Field(default="RGB", description="channel order the model was trained on")
    normalisation: Normalisation = Field(default_factory=Normalisation)
    pad_value: int = Field(default=114, ge=0, le=255, description="letterbox padding grey level")
    image: Literal["pseudo_colour", "stacked_channels"] = Field(
        default="pseudo_colour",
        description=(
            "pseudo_colour: the operator RGB image; stacked_channels: (high attenuation, low attenuation, "
            "effective Z) scaled to uint8 (see smartscreen.detection.preprocess.stacked_channels_image)"
        ),
    )

    @model_validator(mode="after")
    def _size_multiple_of_stride(self) -> InputSpec:
        h, w = self.size_hw
        if h < self.stride_px or w < self.stride_px:
            raise ValueError(f"size_hw {self.size_hw} must be at least stride_px={self.stride_px}")
        if h % self.stride_px or w % self.stride_px:
            raise ValueError(f"size_hw {self.size_hw} must be multiples of stride_px={self.stride_px}")
        return self


class CropSpec(_Strict):
    """Crop each image to its non-background content before letterboxing (training crops the same way)."""

    enabled: bool = True
    background_min: int = Field(
        default=235, ge=1, le=255, description="a pixel is background (air, white) when all channels are >= this"
    )
    margin_px: int = Field(default=16, ge=0, le=1024, description="margin kept around the content box")
    min_pixels: int = Field(
        default=3, ge=1, le=1024, description="rows/columns with fewer content pixels than this are noise, not parcel"
    )


class OutputSpec(_Strict):
    name: str = Field(default="output0", min_length=1, description="ONNX output name")
    format: Literal["yolo_v8"] = Field(
        default="yolo_v8",
        description="yolo_v8: (batch, 4 + n_classes, n_anchors), boxes cx, cy, w, h in input pixels, sigmoid scores",
    )


class NmsDefaults(_Strict):
    conf: float = Field(default=0.25, ge=0.0, le=1.0, description="minimum class score kept")
    iou: float = Field(default=0.45, gt=0.0, le=1.0, description="IoU above which the lower-scored box is dropped")
    max_det: int = Field(default=300, ge=1, le=10000, description="most detections kept per image")
    class_aware: bool = Field(default=True, description="suppress only boxes of the same class")


TtaMode = Literal["none", "h", "hv", "d4"]


class TtaSpec(_Strict):
    """Test-time augmentation: the model also runs on mirrored (and transposed) copies of each input tensor and the
    views' boxes are fused.

    A box's fused score is the sum of its matched views' scores divided by the number of views, so an object
    every view finds keeps its score and a box only one view of four produces keeps a quarter of it: false
    alarms that depend on orientation fall away. Costs one inference per view.
    """

    mode: TtaMode = Field(
        default="none",
        description=(
            "none: one view; h: plus the left-right mirror (2 views); hv: plus the up-down mirror and both (4); "
            "d4: those four and the same on the transposed image (8, every 90-degree rotation and mirror)"
        ),
    )
    fusion_iou: float = Field(
        default=0.55, gt=0.0, le=1.0, description="boxes of one class from different views with IoU >= this are one"
    )


class TrainingInfo(_Strict):
    data_description: str = Field(min_length=1, description="what the model was trained on, for the audit trail")
    data_sha256: Sha256Hex | None = Field(default=None, description="hash of the training data manifest")
    base_weights: str | None = Field(default=None, description="initial weights (None: trained from scratch)")
    epochs: int | None = Field(default=None, ge=0)
    imgsz: int | None = Field(default=None, ge=1)
    framework: str | None = Field(default=None, description="e.g. 'ultralytics 8.4.190, torch 2.14.1'")
    notes: str = ""


class VerifierSpec(_Strict):
    """The second-look crop classifier (``smartscreen.detection.verifier``): file, crop geometry, fusion."""

    file: str = Field(default="verifier.onnx", pattern=r"^[A-Za-z0-9_.-]+\.onnx$", description="file in the package")
    sha256: Sha256Hex = Field(description="sha256 of the verifier file")
    crop_px: int = Field(default=64, ge=16, le=512, description="side of the square crop the classifier takes")
    context: float = Field(default=1.5, ge=1.0, le=4.0, description="crop side / the box's longer side")
    weight: float = Field(
        default=0.5, ge=0.0, le=1.0, description="weight of the verifier in the geometric mean of the two scores"
    )
    evidence: Literal["class", "object"] = Field(
        default="class",
        description=(
            "what the verifier's probability is: class = of the box's own class; object = of any class (one minus "
            "background), leaving the class to the detector"
        ),
    )
    min_score: float = Field(default=0.01, ge=0.0, lt=1.0, description="candidates below this detector score drop")
    max_candidates: int = Field(default=32, ge=1, le=1000, description="at most this many boxes per image looked at")
    training: TrainingInfo | None = None


class Metrics(_Strict):
    dataset: str = Field(min_length=1, description="evaluation set the numbers come from")
    map50: float | None = Field(default=None, ge=0, le=1)
    map50_95: float | None = Field(default=None, ge=0, le=1)
    precision: float | None = Field(default=None, ge=0, le=1)
    recall: float | None = Field(default=None, ge=0, le=1)
    per_class_ap50: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, float] = Field(default_factory=dict, description="further named figures, e.g. false_alarm_rate")


class ModelManifest(_Strict):
    """Schema of ``model.yaml``."""

    format_version: Literal[1] = FORMAT_VERSION
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.+-]+$")
    architecture: str = Field(default="yolo11n", min_length=1)
    description: str = ""
    class_names: tuple[str, ...] = Field(default=CLASS_NAMES, min_length=1)
    input: InputSpec = Field(default_factory=InputSpec)
    crop: CropSpec = Field(default_factory=CropSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    nms: NmsDefaults = Field(default_factory=NmsDefaults)
    tta: TtaSpec = Field(default_factory=TtaSpec)
    verifier: VerifierSpec | None = Field(default=None, description="optional second-look crop classifier")
    training: TrainingInfo | None = None
    metrics: Metrics | None = None
    sha256: Sha256Hex = Field(description="sha256 of model.onnx")

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"class names must be unique, duplicated: {dupes}")
        if any(not n.strip() for n in value):
            raise ValueError("class names must not be empty")
        return value

    @model_validator(mode="after")
    def _metrics_name_known_classes(self) -> ModelManifest:
        if self.metrics is not None:
            unknown = sorted(set(self.metrics.per_class_ap50) - set(self.class_names))
            if unknown:
                raise ValueError(f"metrics.per_class_ap50 names classes not in class_names: {unknown}")
        return self

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def operating_threshold(
        self, tta: TtaMode | Literal["package"] = "package", verifier: Literal["package", "off"] = "package"
    ) -> float | None:
        """The score threshold ``smartscreen eval --record`` chose for its clean-parcel false-alarm target.

        None when no evaluation is recorded, when ``tta`` asks for other test-time views than the package's, or
        when the package's verifier is turned off (the recorded threshold was measured with the package's views
        and verifier; without them the scores are others).
        """
        if self.metrics is None or tta not in ("package", self.tta.mode):
            return None
        if verifier == "off" and self.verifier is not None:
            return None
        return self.metrics.extra.get("operating_threshold")


@dataclass(frozen=True, slots=True)
class TensorSignature:
    """Name, shape (ints for fixed axes, str/None for dynamic ones) and ONNX type string of a graph input/output."""

    name: str
    shape: tuple[int | str | None, ...]
    type: str  # e.g. "tensor(float)"


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A validated package: its directory, manifest and model file."""

    directory: Path
    manifest: ModelManifest

    @property
    def onnx_path(self) -> Path:
        return self.directory / ONNX_FILE

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_FILE

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.manifest.class_names


_ONNX_DTYPES = {"float32": "tensor(float)", "float16": "tensor(float16)"}


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _fixed(dim: int | str | None) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def check_signature(
    manifest: ModelManifest,
    inputs: Sequence[TensorSignature],
    outputs: Sequence[TensorSignature],
    source: str = ONNX_FILE,
) -> None:
    """Raise :class:`ModelPackageError` listing every way the ONNX signature contradicts the manifest."""
    problems: list[str] = []
    spec = manifest.input
    by_name = {i.name: i for i in inputs}
    if len(inputs) != 1:
        problems.append(f"{source} has {len(inputs)} inputs ({', '.join(by_name)}); the engine feeds exactly one image")
    tensor = by_name.get(spec.name)
    if tensor is None:
        problems.append(
            f"input.name is {spec.name!r} but {source}'s inputs are {sorted(by_name)}: set input.name to the graph's input"
        )
    else:
        if len(tensor.shape) != 4:
            problems.append(f"{source} input {tensor.name!r} has rank {len(tensor.shape)}, layout NCHW needs rank 4")
        else:
            n, c, h, w = (_fixed(d) for d in tensor.shape)
            if c is not None and c != 3:
                problems.append(f"{source} input has {c} channels; the engine feeds 3 (set by input.image)")
            if spec.dynamic_batch and n is not None:
                problems.append(
                    f"input.dynamic_batch is true but {source} has a fixed batch of {n}: "
                    "set dynamic_batch: false or re-export with a dynamic batch axis"
                )
            if spec.dynamic_hw and (h is not None or w is not None):
                problems.append(
                    f"input.dynamic_hw is true but {source} has a fixed {h}x{w} input: "
                    "set dynamic_hw: false or re-export with dynamic=True"
                )
            if h is not None and w is not None and (h, w) != spec.size_hw:
                problems.append(
                    f"input.size_hw is {list(spec.size_hw)} but {source} takes {h}x{w}: set size_hw: [{h}, {w}]"
                )
        expected_type = _ONNX_DTYPES[spec.dtype]
        if tensor.type != expected_type:
            problems.append(f"input.dtype is {spec.dtype} ({expected_type}) but {source} takes {tensor.type}")
    out_names = {o.name: o for o in outputs}
    out = out_names.get(manifest.output.name)
    if out is None:
        problems.append(
            f"output.name is {manifest.output.name!r} but {source}'s outputs are {sorted(out_names)}: "
            "set output.name to the detection output"
        )
    elif len(out.shape) != 3:
        problems.append(f"{source} output {out.name!r} has rank {len(out.shape)}; format yolo_v8 is (batch, 4+nc, N)")
    else:
        channels = _fixed(out.shape[1])
        if channels is not None and channels != 4 + manifest.n_classes:
            problems.append(
                f"{source} output has {channels} rows = 4 box values + {channels - 4} classes, "
                f"but class_names lists {manifest.n_classes}: fix class_names (or export with nc={manifest.n_classes})"
            )
    if problems:
        raise ModelPackageError(f"model package does not match {source}:\n  " + "\n  ".join(problems))


class _NodeArg(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> Sequence[int | str | None]: ...

    @property
    def type(self) -> str: ...


class _SessionLike(Protocol):
    def get_inputs(self) -> Sequence[_NodeArg]: ...

    def get_outputs(self) -> Sequence[_NodeArg]: ...

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> Sequence[Any]: ...


def session_signature(session: _SessionLike) -> tuple[list[TensorSignature], list[TensorSignature]]:
    """Inputs and outputs of an ``onnxruntime.InferenceSession`` (or anything with get_inputs/get_outputs)."""

    def convert(args: Sequence[_NodeArg]) -> list[TensorSignature]:
        return [TensorSignature(name=str(a.name), shape=tuple(a.shape), type=str(a.type)) for a in args]

    return convert(session.get_inputs()), convert(session.get_outputs())


def open_probe_session(onnx_path: Path) -> _SessionLike:
    """A cheap onnxruntime session (graph optimisation off, 1 thread) for validating a file."""
    import onnxruntime as ort  # runtime dependency; imported here so the schema module stays light

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session: _SessionLike = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelPackageError(f"{onnx_path} is not a loadable ONNX model: {e}") from e
    return session


def read_onnx_signature(onnx_path: Path) -> tuple[list[TensorSignature], list[TensorSignature]]:
    """Inputs and outputs of an ONNX file."""
    return session_signature(open_probe_session(onnx_path))


def probe_input_hw(manifest: ModelManifest) -> tuple[int, int]:
    """Smallest input the model accepts: 2 strides square when dynamic, else its fixed size."""
    spec = manifest.input
    return (2 * spec.stride_px, 2 * spec.stride_px) if spec.dynamic_hw else spec.size_hw


def check_session(manifest: ModelManifest, session: _SessionLike, source: str = ONNX_FILE) -> None:
    """Check the session's signature, then run one tiny zero input and check the output's real shape.

    Exported YOLO graphs often leave the output's class axis symbolic, so only a run
    shows whether it matches ``class_names``.
    """
    inputs, outputs = session_signature(session)
    check_signature(manifest, inputs, outputs, source=source)
    h, w = probe_input_hw(manifest)
    dtype = np.float16 if manifest.input.dtype == "float16" else np.float32
    try:
        result = session.run([manifest.output.name], {manifest.input.name: np.zeros((1, 3, h, w), dtype)})
    except Exception as e:  # onnxruntime's own error types
        raise ModelPackageError(f"{source} fails on a 1x3x{h}x{w} probe input: {e}") from e
    shape = tuple(np.asarray(result[0]).shape)
    nc = manifest.n_classes
    if len(shape) != 3 or shape[0] != 1 or shape[1] != 4 + nc:
        found = f"{shape[1] - 4} classes" if len(shape) == 3 else f"shape {shape}"
        raise ModelPackageError(
            f"{source} returns output of shape {shape} for one image, but format yolo_v8 with the "
            f"{nc} class_names of the manifest needs (1, {4 + nc}, N): the model has {found}; fix class_names "
            f"or re-export the model with nc={nc}"
        )


def parse_manifest(text: str, source: str = MANIFEST_FILE) -> ModelManifest:
    """Validate ``model.yaml`` text; errors name each field and what is wrong with it."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise ModelPackageError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ModelPackageError(f"{source}: the top level must be a mapping (name, version, class_names, input, ...)")
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()]
        raise ModelPackageError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from e


def manifest_to_yaml(manifest: ModelManifest) -> str:
    data = manifest.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_model_package(directory: Path | str, *, check_onnx: bool = True) -> ModelPackage:
    """Load and validate a model package directory.

    Checks that both files exist, ``model.yaml`` is valid, ``model.onnx`` has the
    recorded sha256 and (``check_onnx``) its input/output signature matches the
    manifest and a verifier the manifest names is there with its recorded sha256.
    The engine passes ``check_onnx=False`` and checks its own session (and its
    verifier) instead, so each graph is loaded once.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelPackageError(
            f"model package {directory} does not exist or is not a directory; "
            f"a package is a directory with {ONNX_FILE} and {MANIFEST_FILE} (see `smartscreen export`)"
        )
    manifest_path = directory / MANIFEST_FILE
    onnx_path = directory / ONNX_FILE
    missing = [p.name for p in (manifest_path, onnx_path) if not p.is_file()]
    if missing:
        raise ModelPackageError(
            f"model package {directory} lacks {' and '.join(missing)}; "
            f"a package needs both {ONNX_FILE} and {MANIFEST_FILE} (re-run `smartscreen export`)"
        )
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelPackageError(f"cannot read {manifest_path}: {e}") from e
    manifest = parse_manifest(text, source=str(manifest_path))
    actual = sha256_file(onnx_path)
    if actual != manifest.sha256:
        raise ModelPackageError(
            f"{onnx_path} has sha256 {actual} but {manifest_path} records {manifest.sha256}: the model file was "
            "replaced or corrupted; restore the right model.onnx or re-export the package"
        )
    if check_onnx:
        check_session(manifest, open_probe_session(onnx_path), source=str(onnx_path))
        if manifest.verifier is not None:
            verifier_path = directory / manifest.verifier.file
            if not verifier_path.is_file():
                raise ModelPackageError(f"{manifest_path} names a verifier {manifest.verifier.file} that is not there")
            if sha256_file(verifier_path) != manifest.verifier.sha256:
                raise ModelPackageError(
                    f"{verifier_path} does not have the sha256 {manifest_path} records: restore the right file or "
                    "re-run `smartscreen verifier`"
                )
    return ModelPackage(directory=directory, manifest=manifest)


def write_model_package(
    directory: Path | str,
    onnx_source: Path | str,
    *,
    name: str,
    version: str,
    class_names: Sequence[str] = CLASS_NAMES,
    input_size_hw: tuple[int, int] = (640, 640),
    input_image: Literal["pseudo_colour", "stacked_channels"] = "pseudo_colour",
    architecture: str = "yolo11n",
    description: str = "",
    training: TrainingInfo | None = None,
    metrics: Metrics | None = None,
    nms: NmsDefaults | None = None,
    tta: TtaSpec | None = None,
    crop: CropSpec | None = None,
    normalisation: Normalisation | None = None,
    colour_order: Literal["RGB", "BGR"] = "RGB",
    overwrite: bool = False,
) -> ModelPackage:
    """Write ``directory/model.onnx`` + ``model.yaml`` from an exported ONNX file and return the loaded package.

    Input/output names, dtype and which axes are dynamic are read from the ONNX
    graph itself, so the manifest cannot contradict it; the result is re-loaded
    before it is returned. Only ``model.onnx`` and ``model.yaml`` are written (other
    files in the directory, e.g. a model card or a training recipe, are kept); each is
    written to a temporary file first and renamed into place.
    """
    directory = Path(directory)
    onnx_source = Path(onnx_source)
    if not onnx_source.is_file():
        raise ModelPackageError(f"ONNX file {onnx_source} does not exist")
    existing = [name for name in (ONNX_FILE, MANIFEST_FILE) if (directory / name).exists()]
    if existing and not overwrite:
        raise ModelPackageError(
            f"{directory} already holds {' and '.join(existing)}; pass overwrite=True to replace the package"
        )
    probe = open_probe_session(onnx_source)
    inputs, outputs = session_signature(probe)
    if len(inputs) != 1:
        raise ModelPackageError(f"{onnx_source} has {len(inputs)} inputs; a detector package needs exactly one")
    if not outputs:
        raise ModelPackageError(f"{onnx_source} has no outputs")
    tensor = inputs[0]
    if len(tensor.shape) != 4:
        raise ModelPackageError(f"{onnx_source} input {tensor.name!r} has shape {tensor.shape}; NCHW (rank 4) needed")
    n_dim, _, h_dim, w_dim = (_fixed(d) for d in tensor.shape)
    if h_dim is not None and w_dim is not None:
        input_size_hw = (h_dim, w_dim)
    dtype: Literal["float32", "float16"] = "float16" if tensor.type == "tensor(float16)" else "float32"
    manifest = ModelManifest(
        name=name,
        version=version,
        architecture=architecture,
        description=description,
        class_names=tuple(class_names),
        input=InputSpec(
            name=tensor.name,
            size_hw=input_size_hw,
            dynamic_batch=n_dim is None,
            dynamic_hw=h_dim is None and w_dim is None,
            dtype=dtype,
            colour_order=colour_order,
            normalisation=normalisation or Normalisation(),
            image=input_image,
        ),
        crop=crop or CropSpec(),
        output=OutputSpec(name=outputs[0].name),
        nms=nms or NmsDefaults(),
        tta=tta or TtaSpec(),
        training=training,
        metrics=metrics,
        sha256=sha256_file(onnx_source),
    )
    check_session(manifest, probe, source=str(onnx_source))
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        shutil.copyfile(onnx_source, staging / ONNX_FILE)
        (staging / MANIFEST_FILE).write_text(manifest_to_yaml(manifest), encoding="utf-8")
        # model.yaml goes last: a crash in between leaves a hash mismatch that load_model_package reports
        (staging / ONNX_FILE).replace(directory / ONNX_FILE)
        (staging / MANIFEST_FILE).replace(directory / MANIFEST_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_model_package(directory, check_onnx=False)


def update_model_package(
    directory: Path | str,
    *,
    metrics: Metrics | None = None,
    training: TrainingInfo | None = None,
    nms: NmsDefaults | None = None,
    tta: TtaSpec | None = None,
    description: str | None = None,
    version: str | None = None,
    verifier: VerifierSpec | None = None,
    clear_metrics: bool = False,
) -> ModelPackage:
    """Rewrite only ``model.yaml`` of an existing package with the given fields replaced (e.g. new metrics).

    ``clear_metrics`` removes the recorded metrics (and so the operating threshold), for a change that
    invalidates them, such as attaching a verifier. Everything else in the manifest (input spec, crop, class names, sha256) and every other
    file are kept; the result is validated before it replaces the old ``model.yaml``.
    """
    package = load_model_package(directory, check_onnx=False)
    data = package.manifest.model_dump(mode="json")
    for key, value in (
        ("metrics", metrics),
        ("training", training),
        ("nms", nms),
        ("tta", tta),
        ("description", description),
        ("version", version),
        ("verifier", verifier),
    ):
        if value is not None:
            data[key] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    if clear_metrics:
        data["metrics"] = None
    try:
        manifest = ModelManifest.model_validate(data)
    except ValidationError as e:
        raise ModelPackageError(f"updated manifest for {package.directory} is invalid: {e}") from e
    tmp = package.manifest_path.with_name(f".{MANIFEST_FILE}.tmp")
    tmp.write_text(manifest_to_yaml(manifest), encoding="utf-8")
    tmp.replace(package.manifest_path)
    return ModelPackage(directory=package.directory, manifest=manifest)
