"""Training with ultralytics: from a model YAML (no weight download), X-ray-safe augmentation,
deterministic seed, resumable, progress as JSON lines, one run folder per run.

Only this module (and :mod:`smartscreen.training.export`) imports torch / ultralytics, and only
inside functions: ``smartscreen --help`` and the runtime line never load them.

Run folder (``runs/train/<name>/``, made by ultralytics and completed here)::

    weights/best.pt, weights/last.pt     ultralytics checkpoints (last.pt resumes)
    args.yaml, results.csv, *.png        ultralytics' own records and plots
    data.resolved.yaml                   the data.yaml with absolute paths actually trained on
    smartscreen-train.json               settings, class names, data sha256, versions (export reads it)
    progress.jsonl                       one line per epoch: losses, mAP, elapsed seconds
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from smartscreen.errors import DatasetError, MissingDependencyError, SmartScreenError
from smartscreen.training.augment import XrayAugmentSettings, XrayPhotometric
from smartscreen.training.datayaml import fingerprint, load_data_yaml, resolved_copy

logger = logging.getLogger(__name__)

RUN_RECORD = "smartscreen-train.json"
PROGRESS_FILE = "progress.jsonl"


class TrainingError(SmartScreenError):
    """Training could not start or did not finish."""


@dataclass(frozen=True, slots=True)
class TrainSettings:
    data: Path
    model: str = "yolo11n.yaml"  # a model YAML (from scratch) or a .pt of our own to fine-tune
    imgsz: int = 416
    epochs: int = 30
    batch: int = 16
    time_h: float | None = None  # hard cap on training hours (ultralytics 'time'); overrides epochs
    seed: int = 0
    project: Path = Path("runs/train")
    name: str = "smartscreen"
    exist_ok: bool = False
    threads: int = 2  # torch threads; ultralytics would use cpu_count-1 (1 on a 2-core machine)
    device: str = "cpu"
    patience: int = 100
    close_mosaic: int = 5
    mosaic: float = 1.0
    scale: float = 0.5
    translate: float = 0.1
    degrees: float = 0.0
    fliplr: float = 0.5
    flipud: float = 0.5  # parcels lie either way up on the belt
    hsv_h: float = 0.0  # hue encodes material: never jitter it by default
    hsv_s: float = 0.0
    hsv_v: float = 0.25  # brightness only
    # "auto": ultralytics' choice (AdamW with a class-count-derived lr for short runs); or SGD, AdamW, ...
    optimizer: str = "auto"
    lr0: float = 0.01  # initial learning rate; ultralytics ignores it when optimizer is "auto"
    nbs: int = 64  # nominal batch: gradients of batch-sized steps are accumulated up to it before each update
    warmup_bias_lr: float = 0.0  # ultralytics' 0.1 start is for SGD; with Adam it throws trained biases away
    cos_lr: bool = False
    cache: bool = False  # True: decoded images in RAM
    val: bool = True
    plots: bool = True
    xray: XrayAugmentSettings = field(default_factory=XrayAugmentSettings)


@dataclass(frozen=True, slots=True)
class TrainResult:
    run_dir: Path
    best_weights: Path
    last_weights: Path
    metrics: dict[str, float]


def offline_environment(state_dir: Path | None = None) -> None:
    """Environment every process that imports ultralytics needs: no downloads, no pip, no DNS."""
    root = Path(__file__).resolve().parents[3]
    default = (
        root / ".ultralytics" if (root / "pyproject.toml").is_file() else Path.home() / ".smartscreen" / "ultralytics"
    )
    os.environ.setdefault("YOLO_CONFIG_DIR", str(state_dir or default))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


def import_ultralytics(threads: int) -> Any:
    """Import ultralytics offline with ``threads`` torch threads; returns the ``YOLO`` class."""
    offline_environment()
    try:
        import torch
        import ultralytics.utils.torch_utils as torch_utils
        from ultralytics import YOLO  # type: ignore[attr-defined]
    except ImportError as e:
        raise MissingDependencyError("training and export", "train") from e
    setattr(torch_utils, "NUM_THREADS", max(1, threads))  # noqa: B010 (ultralytics reads the module global)
    torch.set_num_threads(max(1, threads))
    return YOLO


def framework_versions() -> str:
    import torch
    import ultralytics

    return f"ultralytics {ultralytics.__version__}, torch {torch.__version__}"


def _trainer_class(xray: XrayAugmentSettings, on_epoch: Callable[[dict[str, float]], None] | None) -> Any:
    from ultralytics.models.yolo.detect import DetectionTrainer

    photometric = XrayPhotometric(xray)

    def with_xray(transforms: Any) -> Any:
        transforms.transforms.insert(len(transforms.transforms) - 1, photometric)  # before Format
        return transforms

    class XrayTrainer(DetectionTrainer):
        """DetectionTrainer whose training set adds :class:`XrayPhotometric` before formatting."""

        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
            dataset = super().build_dataset(img_path, mode=mode, batch=batch)
            if mode == "train" and getattr(dataset, "augment", False):
                base = type(dataset)

                class XrayDataset(base):  # type: ignore[misc, valid-type]
                    def build_transforms(self, hyp: Any = None) -> Any:
                        return with_xray(super().build_transforms(hyp))

                dataset.__class__ = XrayDataset
                dataset.transforms = with_xray(dataset.transforms)
            return dataset

    return XrayTrainer


def _metrics_of(trainer: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (getattr(trainer, "metrics", None) or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            logger.debug("metric %s is not a number: %r", key, value)
    return out


def _record(
    settings: TrainSettings, run_dir: Path, data_sha256: str, n_images: int, class_names: tuple[str, ...]
) -> None:
    doc = asdict(settings)
    doc["data"] = str(settings.data)
    doc["project"] = str(settings.project)
    record = {
        "settings": doc,
        "class_names": list(class_names),
        "data_sha256": data_sha256,
        "data_images": n_images,
        "framework": framework_versions(),
        "started_unix_s": time.time(),
    }
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")


def read_run_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_RECORD
    if not path.is_file():
        raise TrainingError(f"{run_dir} has no {RUN_RECORD}: was it made by 'smartscreen train'?")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _settings_from_record(run_dir: Path) -> TrainSettings:
    doc = dict(read_run_record(run_dir)["settings"])
    xray_doc: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.pop("xray").items()}
    xray = XrayAugmentSettings(**xray_doc)
    doc["data"] = Path(doc["data"])
    doc["project"] = Path(doc["project"])
    return TrainSettings(**doc, xray=xray)


def train(settings: TrainSettings, *, on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train a detector; returns the run folder and its weights. Blocks until done."""
    data = load_data_yaml(settings.data)
    if not data.split_entry("train") or not data.split_entry("val"):
        raise DatasetError(f"{settings.data} needs both 'train' and 'val' entries")
    data_sha256, n_images = fingerprint(data, ("train",))
    if n_images == 0:
        raise DatasetError(f"{settings.data}: the training split holds no images")
    yolo_class = import_ultralytics(settings.threads)
    project = settings.project.resolve()
    project.mkdir(parents=True, exist_ok=True)
    resolved = resolved_copy(data, project / f".{settings.name}.data.yaml")
    model_ref = settings.model
    if model_ref.endswith((".yaml", ".yml")) and not Path(model_ref).is_file():
        pass  # an ultralytics built-in architecture name such as yolo11n.yaml: built from scratch, nothing downloaded
    elif not Path(model_ref).is_file():
        raise TrainingError(
            f"model {model_ref!r} is neither a model YAML nor an existing weights file (nothing is downloaded)"
        )
    model = yolo_class(model_ref)
    fresh = model_ref.endswith((".yaml", ".yml"))  # built from scratch, not fine-tuned from our own weights
    state: dict[str, Any] = {"t0": time.monotonic()}

    def on_pretrain(trainer: Any) -> None:
        run_dir = Path(trainer.save_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "data.resolved.yaml").write_text(resolved.read_text(encoding="utf-8"), encoding="utf-8")
        _record(settings, run_dir, data_sha256, n_images, data.class_names)

    def on_train_start(trainer: Any) -> None:
        # record the training pipeline actually used (proves the X-ray augmentation is in it)
        path = Path(trainer.save_dir) / RUN_RECORD
        record = json.loads(path.read_text(encoding="utf-8"))
        transforms = getattr(trainer.train_loader.dataset, "transforms", None)
        record["train_transforms"] = [type(t).__name__ for t in getattr(transforms, "transforms", [])]
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")

    model.add_callback("on_pretrain_routine_start", on_pretrain)
    model.add_callback("on_train_start", on_train_start)
    _add_progress_callback(model, state, on_epoch)
    model.train(
        trainer=_trainer_class(settings.xray, on_epoch),
        data=str(resolved),
        imgsz=settings.imgsz,
        epochs=settings.epochs,
        batch=settings.batch,
        time=settings.time_h,
        seed=settings.seed,
        deterministic=True,
        project=str(project),
        name=settings.name,
        exist_ok=settings.exist_ok,
        device=settings.device,
        workers=0,
        amp=False,
        pretrained=not fresh,  # fine-tuning our own .pt keeps its weights
        patience=settings.patience,
        close_mosaic=settings.close_mosaic,
        mosaic=settings.mosaic,
        scale=settings.scale,
        translate=settings.translate,
        degrees=settings.degrees,
        fliplr=settings.fliplr,
        flipud=settings.flipud,
        hsv_h=settings.hsv_h,
        hsv_s=settings.hsv_s,
        hsv_v=settings.hsv_v,
        optimizer=settings.optimizer,
        lr0=settings.lr0,
        nbs=settings.nbs,
        warmup_bias_lr=settings.warmup_bias_lr,
        cos_lr=settings.cos_lr,
        cache=settings.cache,
        val=settings.val,
        plots=settings.plots,
        verbose=True,
    )
    return _result(model)


def _add_progress_callback(
    model: Any, state: dict[str, Any], on_epoch: Callable[[dict[str, float]], None] | None
) -> None:
    def on_fit_epoch_end(trainer: Any) -> None:
        row: dict[str, float] = {"epoch": float(trainer.epoch + 1), "epochs": float(trainer.epochs)}
        row["elapsed_s"] = round(time.monotonic() - state["t0"], 1)
        try:
            losses = trainer.label_loss_items(trainer.tloss, prefix="train")
            row.update({str(k): round(float(v), 5) for k, v in losses.items()})
        except (AttributeError, TypeError, ValueError) as e:
            logger.debug("no loss items: %s", e)
        row.update({k: round(v, 5) for k, v in _metrics_of(trainer).items()})
        with (Path(trainer.save_dir) / PROGRESS_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if on_epoch is not None:
            on_epoch(row)

    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)


def _result(model: Any) -> TrainResult:
    trainer = model.trainer
    run_dir = Path(trainer.save_dir)
    best = Path(trainer.best)
    last = Path(trainer.last)
    if not last.is_file():
        raise TrainingError(f"training ended without writing {last}")
    return TrainResult(
        run_dir=run_dir, best_weights=best if best.is_file() else last, last_weights=last, metrics=_metrics_of(trainer)
    )


def resume(run_dir: Path, *, on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Continue an interrupted run from ``run_dir/weights/last.pt`` with its recorded settings."""
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise TrainingError(f"cannot resume: {last} does not exist")
    settings = _settings_from_record(run_dir)
    yolo_class = import_ultralytics(settings.threads)
    model = yolo_class(str(last))
    _add_progress_callback(model, {"t0": time.monotonic()}, on_epoch)
    model.train(resume=True, trainer=_trainer_class(settings.xray, on_epoch), workers=0)
    return _result(model)


def with_overrides(settings: TrainSettings, **changes: Any) -> TrainSettings:
    return replace(settings, **changes)
