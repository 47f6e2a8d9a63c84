"""``smartscreen export RUN --name NAME``: a trained run -> a complete model package.

ONNX with dynamic batch, height and width (one file serves every rectangular input), exported
in a scratch folder (ultralytics writes next to its input), then written through
:func:`smartscreen.detection.package.write_model_package`, the one package writer, with the
classes, input spec, training data hash and the run's validation metrics. The package is then
loaded by :meth:`smartscreen.detection.OnnxDetector.from_package` as a final check.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smartscreen.detection.package import (
    Metrics,
    ModelPackage,
    NmsDefaults,
    TrainingInfo,
    TtaMode,
    TtaSpec,
    write_model_package,
)
from smartscreen.errors import ModelPackageError
from smartscreen.training.trainer import TrainingError, framework_versions, import_ultralytics, read_run_record

logger = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True, slots=True)
class ExportSettings:
    run_dir: Path
    name: str
    version: str = "1.0.0"
    models_dir: Path = Path("models")
    weights: str = "best"  # best | last
    imgsz: int | None = None  # default: the training size
    conf: float = 0.25
    iou: float = 0.45
    tta: TtaMode = "none"  # test-time augmentation written into model.yaml
    description: str = ""
    overwrite: bool = False
    include_weights: bool = False  # copy the .pt beside the ONNX as weights.pt (to continue training from it)


WEIGHTS_FILE = "weights.pt"


def _parse_results_csv(run_dir: Path) -> dict[str, float]:
    """Last row of ultralytics' results.csv (validation metrics of the final epoch)."""
    path = run_dir / "results.csv"
    if not path.is_file():
        return {}
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header = [h.strip() for h in lines[0].split(",")]
    values: dict[str, float] = {}
    for key, raw in zip(header, lines[-1].split(","), strict=False):
        try:
            values[key] = float(raw)
        except ValueError:
            logger.debug("results.csv: %s=%r is not a number", key, raw)
    return values


def export_onnx(weights: Path, imgsz: int, threads: int = 2) -> tuple[Path, str]:
    """Export ``weights`` (.pt) to ONNX in a scratch folder.

    Returns the .onnx path (the caller removes its folder) and the architecture the checkpoint was built from
    (``yolo11n`` also for a model fine-tuned from our own ``weights.pt``).
    """
    yolo_class = import_ultralytics(threads)
    scratch = Path(tempfile.mkdtemp(prefix="smartscreen-export-"))
    local = scratch / "model.pt"
    shutil.copyfile(weights, local)
    model = yolo_class(str(local))
    built_from = getattr(model.model, "yaml", None) or {}
    architecture = Path(str(built_from.get("yaml_file") or weights.name)).stem
    out = model.export(
        format="onnx",
        dynamic=True,
        simplify=False,
        opset=OPSET,
        imgsz=imgsz,
        batch=1,
        device="cpu",
        nms=False,
        half=False,
    )
    onnx_path = Path(str(out))
    if not onnx_path.is_file():
        raise ModelPackageError(f"ultralytics export produced no file ({out!r})")
    return onnx_path, architecture


def export_run(settings: ExportSettings) -> ModelPackage:
    run_dir = settings.run_dir
    record = read_run_record(run_dir)
    weights = run_dir / "weights" / f"{settings.weights}.pt"
    if not weights.is_file():
        raise TrainingError(f"{weights} does not exist: has the run finished at least one epoch?")
    train_settings = record["settings"]
    imgsz = int(settings.imgsz or train_settings["imgsz"])
    imgsz = max(32, (imgsz + 31) // 32 * 32)
    onnx_path, architecture = export_onnx(weights, imgsz, threads=int(train_settings.get("threads", 2)))
    try:
        results = _parse_results_csv(run_dir)
        metrics = None
        if results:
            metrics = Metrics(
                dataset=f"validation split of {Path(train_settings['data']).name} (ultralytics, during training)",
                map50=_unit(results.get("metrics/mAP50(B)")),
                map50_95=_unit(results.get("metrics/mAP50-95(B)")),
                precision=_unit(results.get("metrics/precision(B)")),
                recall=_unit(results.get("metrics/recall(B)")),
            )
        training = TrainingInfo(
            data_description=f"{train_settings['data']} ({record.get('data_images', '?')} training images)",
            data_sha256=record.get("data_sha256"),
            base_weights=None
            if str(train_settings["model"]).endswith((".yaml", ".yml"))
            else str(train_settings["model"]),
            epochs=int(results.get("epoch", train_settings["epochs"])) if results else int(train_settings["epochs"]),
            imgsz=int(train_settings["imgsz"]),
            framework=record.get("framework") or framework_versions(),
            notes=(
                f"model {train_settings['model']}, batch {train_settings['batch']}, seed {train_settings['seed']}, "
                f"hsv_h {train_settings['hsv_h']}, hsv_s {train_settings['hsv_s']}, hsv_v {train_settings['hsv_v']}, "
                f"mosaic {train_settings['mosaic']}, flipud {train_settings['flipud']}, fliplr {train_settings['fliplr']}, "
                f"optimizer {train_settings.get('optimizer', 'auto')}, lr0 {train_settings.get('lr0')}, "
                f"nbs {train_settings.get('nbs', 64)}, "
                "X-ray photometric augmentation (blur, resample, noise, line noise, JPEG, gamma/contrast, background)"
            ),
        )
        target = settings.models_dir / settings.name
        keep = (
            {
                p.name: p.read_bytes()
                for p in target.iterdir()
                if p.is_file() and p.name not in ("model.onnx", "model.yaml", WEIGHTS_FILE)  # weights: never stale
            }
            if target.is_dir() and settings.overwrite
            else {}
        )
        package = write_model_package(
            target,
            onnx_path,
            name=settings.name,
            version=settings.version,
            class_names=tuple(record["class_names"]),
            input_size_hw=(imgsz, imgsz),
            architecture=architecture,
            description=settings.description or f"trained by smartscreen train, run {run_dir.name}",
            training=training,
            metrics=metrics,
            nms=NmsDefaults(conf=settings.conf, iou=settings.iou),
            tta=TtaSpec(mode=settings.tta),
            overwrite=settings.overwrite,
        )
        for name, data in keep.items():  # the model card and recipe beside the model survive a re-export
            (target / name).write_bytes(data)
        if settings.include_weights:
            shutil.copyfile(weights, target / WEIGHTS_FILE)
    finally:
        shutil.rmtree(onnx_path.parent, ignore_errors=True)
    return package


def _unit(value: float | None) -> float | None:
    return None if value is None else min(1.0, max(0.0, float(value)))
