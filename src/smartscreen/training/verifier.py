"""Train the second-look crop classifier (:mod:`smartscreen.detection.verifier`) for a model package.

1. **Mine** (:func:`mine_crops`): run the package's detector, exactly as the line runs it, over a labelled
   split; every candidate box it would hand the verifier becomes a crop, labelled with the class of the
   ground-truth box it overlaps (IoU >= 0.5) or background (IoU < 0.3 with every ground-truth box; the
   ambiguous ones in between are left out). The background crops are the detector's own false alarms on
   this data: the hard negatives. Each ground-truth box is also cropped, with jitter, so objects the
   detector scores low are learnt too.
2. **Train** (:func:`train_classifier`): the detector's own YOLO11 backbone with a linear head (or a small
   residual CNN from scratch), torch on the CPU, with flips, random crop offsets and the X-ray photometric
   augmentation (no hue change: hue is material).
3. **Export** (:func:`export_onnx`, then :func:`store_weights_as_float16`) with a dynamic batch axis and
   **attach** it (:func:`smartscreen.detection.verifier.attach_verifier`) to the package: ``verifier.onnx`` plus
   the ``verifier:`` section of ``model.yaml``. The operating threshold recorded before no longer applies:
   re-run ``smartscreen eval --record``.

torch is imported inside the functions that need it (the ``train`` extra).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.detection.package import TrainingInfo
from smartscreen.detection.verifier import crop_square, crops_to_tensor
from smartscreen.errors import DatasetError
from smartscreen.training.augment import XrayPhotometric
from smartscreen.training.metrics import ImageBoxes, box_iou
from smartscreen.training.writer import load_image_bgr

if TYPE_CHECKING:
    from smartscreen.training.evaluate import ImageDetector

logger = logging.getLogger(__name__)

POSITIVE_IOU = 0.5
BACKGROUND_IOU = 0.3
# crops are stored this much larger (pixels and context) than the verifier's input; training takes random
# crop_px windows of them (position jitter), evaluation and the line the centre one
STORE_MARGIN = 1.125


@dataclass(frozen=True, slots=True)
class CropSet:
    """Mined crops: ``images`` (n, s, s, 3) uint8 RGB at ``STORE_MARGIN`` x the verifier's size, ``labels`` (n,)
    int64 (class index, or the number of classes for background), ``source`` (n,) 0 = detector candidate,
    1 = jittered ground truth."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    source: npt.NDArray[np.int8]
    n_classes: int

    def counts(self) -> dict[str, int]:
        background = int(np.sum(self.labels == self.n_classes))
        return {
            "crops": len(self.labels),
            "background": background,
            "objects": len(self.labels) - background,
            "from_detector": int(np.sum(self.source == 0)),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, images=self.images, labels=self.labels, source=self.source, n_classes=self.n_classes)

    @classmethod
    def load(cls, path: Path) -> CropSet:
        with np.load(path) as data:
            return cls(
                images=data["images"], labels=data["labels"], source=data["source"], n_classes=int(data["n_classes"])
            )

    @classmethod
    def concat(cls, parts: Sequence[CropSet]) -> CropSet:
        if not parts:
            raise DatasetError("no crops to join")
        return cls(
            images=np.concatenate([p.images for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            source=np.concatenate([p.source for p in parts]),
            n_classes=parts[0].n_classes,
        )


def label_candidates(candidates: npt.NDArray[np.float32], truth: ImageBoxes, n_classes: int) -> npt.NDArray[np.int64]:
    """Class index of the ground-truth box each candidate overlaps with IoU >= 0.5 (the best one), ``n_classes``
    (background) when it overlaps none by 0.3 or more, -1 (left out) in between."""
    labels = np.full(len(candidates), n_classes, np.int64)
    if len(candidates) == 0 or len(truth) == 0:
        return labels
    iou = box_iou(candidates.astype(np.float32), truth.xyxy.astype(np.float32))
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(len(candidates)), best]
    labels[best_iou >= POSITIVE_IOU] = truth.class_ids[best[best_iou >= POSITIVE_IOU]]
    labels[(best_iou >= BACKGROUND_IOU) & (best_iou < POSITIVE_IOU)] = -1
    return labels


def jitter_boxes(
    xyxy: npt.NDArray[np.float32], copies: int, rng: np.random.Generator, shift: float = 0.1, scale: float = 0.15
) -> npt.NDArray[np.float32]:
    """``copies`` perturbed versions of each box (centre moved by up to ``shift`` of its size, sides scaled by up
    to ``scale``), like the boxes a detector puts on an object."""
    if copies <= 0 or len(xyxy) == 0:
        return np.zeros((0, 4), np.float32)
    boxes = np.repeat(xyxy.astype(np.float64), copies, axis=0)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.uniform(-shift, shift, len(boxes)) * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.uniform(-shift, shift, len(boxes)) * h
    w = w * rng.uniform(1 - scale, 1 + scale, len(boxes))
    h = h * rng.uniform(1 - scale, 1 + scale, len(boxes))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def mine_crops(
    detector: ImageDetector,
    paths: Sequence[Path],
    truths_normalised: Sequence[ImageBoxes],
    *,
    crop_px: int,
    context: float,
    min_score: float,
    max_candidates: int,
    max_background_per_image: int = 12,
    truth_copies: int = 2,
    seed: int = 0,
    batch: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> CropSet:
    """Crops of the detector's candidate boxes and of jittered ground truth over ``paths`` (see module doc)."""
    rng = np.random.default_rng(seed)
    n_classes = len(detector.class_names)
    store_px = round(crop_px * STORE_MARGIN)
    store_context = context * STORE_MARGIN
    images: list[npt.NDArray[np.uint8]] = []
    labels: list[npt.NDArray[np.int64]] = []
    sources: list[npt.NDArray[np.int8]] = []
    for start in range(0, len(paths), batch):
        chunk = list(paths[start : start + batch])
        decoded = [load_image_bgr(path)[0] for path in chunk]
        rgbs: list[npt.NDArray[np.uint8]] = [
            np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8) for bgr in decoded
        ]
        found = detector.detect_images(rgbs)
        for image, normalised, pred in zip(rgbs, truths_normalised[start : start + batch], found, strict=True):
            h, w = image.shape[:2]
            truth = ImageBoxes.truth(normalised.xyxy * np.array([w, h, w, h], np.float32), normalised.class_ids)
            order = np.argsort(-pred.scores, kind="stable")
            order = order[pred.scores[order] >= min_score][:max_candidates]
            boxes = pred.xyxy[order]
            cand = label_candidates(boxes, truth, n_classes)
            keep = cand >= 0
            background = np.flatnonzero(cand == n_classes)[max_background_per_image:]  # highest-scoring first
            keep[background] = False
            boxes, cand = boxes[keep], cand[keep]
            jittered = jitter_boxes(truth.xyxy, truth_copies, rng)
            all_boxes = np.concatenate([boxes, jittered])
            if len(all_boxes) == 0:
                continue
            images.append(crop_square(image, all_boxes, store_px, store_context))
            labels.append(np.concatenate([cand, np.repeat(truth.class_ids.astype(np.int64), truth_copies)]))
            sources.append(np.concatenate([np.zeros(len(boxes), np.int8), np.ones(len(jittered), np.int8)]))
        if progress is not None:
            progress(min(start + batch, len(paths)), len(paths))
    if not images:
        raise DatasetError("the detector found no candidates and the split has no boxes: nothing to train on")
    return CropSet(
        images=np.concatenate(images),
        labels=np.concatenate(labels),
        source=np.concatenate(sources),
        n_classes=n_classes,
    )


def centre_crops(stored: npt.NDArray[np.uint8], crop_px: int) -> npt.NDArray[np.uint8]:
    """The centre ``crop_px`` window of stored crops: what the line's verifier sees."""
    off = (stored.shape[1] - crop_px) // 2
    return np.ascontiguousarray(stored[:, off : off + crop_px, off : off + crop_px])


# ---------------------------------------------------------------------------------------------- the network


BACKBONE_LAYERS = 11  # YOLO11's backbone: layers 0-10 (Conv ... SPPF, C2PSA) run one after the other


def build_classifier(n_outputs: int, width: int = 32, backbone: Path | None = None) -> Any:
    """The crop classifier. With ``backbone`` (an ultralytics YOLO11 ``weights.pt``, e.g. the package's own): that
    detector's backbone (its first ``BACKBONE_LAYERS`` layers, stride 32), pooling and a linear head, so the
    verifier starts from features already trained on X-ray scans. Without: a small residual CNN from random
    initialisation (stride-2 stem, three stride-2 residual stages of 2x, 4x, 8x ``width`` channels)."""
    import torch
    from torch import nn

    if backbone is not None:
        from smartscreen.training.trainer import import_ultralytics

        yolo = import_ultralytics(torch.get_num_threads())
        layers = list(yolo(str(backbone)).model.model)
        if len(layers) <= BACKBONE_LAYERS or any(getattr(m, "f", -1) != -1 for m in layers[:BACKBONE_LAYERS]):
            raise DatasetError(f"{backbone} does not hold a YOLO11-style backbone (layers 0-10 in sequence)")
        body = nn.Sequential(*layers[:BACKBONE_LAYERS]).float()
        with torch.no_grad():
            channels = int(body(torch.zeros(1, 3, 64, 64)).shape[1])
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, n_outputs))
        model = nn.Sequential(body, head)
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.short(x))

    return nn.Sequential(
        nn.Conv2d(3, width, 3, 2, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        Block(width, 2 * width, 2),
        Block(2 * width, 4 * width, 2),
        Block(4 * width, 8 * width, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8 * width, n_outputs),
    )


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_background_recall: float  # share of background crops called background
    val_object_recall: float  # share of object crops called their own class
    seconds: float


def _augment_batch(
    stored: npt.NDArray[np.uint8], crop_px: int, rng: np.random.Generator, photometric: XrayPhotometric
) -> npt.NDArray[np.uint8]:
    n, s = stored.shape[0], stored.shape[1]
    out = np.empty((n, crop_px, crop_px, 3), np.uint8)
    offsets = rng.integers(0, s - crop_px + 1, size=(n, 2))
    flips = rng.random((n, 2)) < 0.5
    for k in range(n):
        oy, ox = offsets[k]
        crop = stored[k, oy : oy + crop_px, ox : ox + crop_px]
        if flips[k, 0]:
            crop = crop[:, ::-1]
        if flips[k, 1]:
            crop = crop[::-1]
        out[k] = photometric.apply(np.ascontiguousarray(crop[:, :, ::-1]))[:, :, ::-1]  # it works on BGR
    return out


def train_classifier(
    train: CropSet,
    val: CropSet,
    *,
    crop_px: int,
    epochs: int,
    width: int = 32,
    backbone: Path | None = None,
    backbone_lr_factor: float = 0.2,
    batch: int = 128,
    lr: float = 0.003,
    seed: int = 0,
    threads: int = 2,
    log: Callable[[EpochRecord], None] | None = None,
) -> tuple[Any, list[EpochRecord]]:
    """Train the classifier (AdamW, one-cycle learning rate, unweighted cross-entropy; a ``backbone`` learns at
    ``backbone_lr_factor`` x ``lr``); returns (model in eval mode, per-epoch records). The weights of the epoch
    with the lowest validation loss are kept."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    np.random.seed(seed)  # XrayPhotometric draws from numpy's global generator
    rng = np.random.default_rng(seed)
    n_out = train.n_classes + 1
    model = build_classifier(n_out, width, backbone)
    # plain cross-entropy, no class weights: the fused score multiplies the probabilities, so they should be
    # calibrated to the candidates' real mix of objects and background
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    if backbone is not None:
        groups = [
            {"params": list(model[0].parameters()), "lr": lr * backbone_lr_factor},
            {"params": list(model[1].parameters()), "lr": lr},
        ]
        peaks = [lr * backbone_lr_factor, lr]
    else:
        groups = [{"params": list(model.parameters()), "lr": lr}]
        peaks = [lr]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * math.ceil(len(train.labels) / batch))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=steps, pct_start=0.1)
    photometric = XrayPhotometric()
    val_x = torch.from_numpy(crops_to_tensor(centre_crops(val.images, crop_px)))
    val_y = torch.from_numpy(val.labels)
    records: list[EpochRecord] = []
    best_loss, best_state = math.inf, None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(train.labels))
        total, seen = 0.0, 0
        for start in range(0, len(order), batch):
            idx = np.sort(order[start : start + batch])
            x = torch.from_numpy(crops_to_tensor(_augment_batch(train.images[idx], crop_px, rng, photometric)))
            y = torch.from_numpy(train.labels[idx])
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.item()) * len(idx)
            seen += len(idx)
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(val_x[i : i + 512]) for i in range(0, len(val_x), 512)])
            val_loss = float(loss_fn(logits, val_y))
            predicted = logits.argmax(1)
        is_bg = val_y == train.n_classes
        record = EpochRecord(
            epoch=epoch,
            train_loss=total / max(seen, 1),
            val_loss=val_loss,
            val_accuracy=float((predicted == val_y).float().mean()),
            val_background_recall=float((predicted[is_bg] == val_y[is_bg]).float().mean()) if is_bg.any() else 0.0,
            val_object_recall=float((predicted[~is_bg] == val_y[~is_bg]).float().mean()) if (~is_bg).any() else 0.0,
            seconds=time.perf_counter() - t0,
        )
        records.append(record)
        if log is not None:
            log(record)
        if val_loss < best_loss:
            best_loss = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, records


def export_onnx(model: Any, crop_px: int, target: Path) -> Path:
    """The classifier as ONNX (opset 17, input ``crops`` (n, 3, s, s) with a dynamic batch, output ``logits``)."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, 3, crop_px, crop_px)
    torch.onnx.export(
        model,
        (dummy,),
        str(target),
        input_names=["crops"],
        output_names=["logits"],
        dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return target


def store_weights_as_float16(path: Path, min_elements: int = 1024) -> tuple[int, int]:
    """Rewrite the ONNX file at ``path`` with its larger float32 weights stored as float16, each behind a Cast back
    to float32 (onnxruntime folds the casts when it loads the graph: computation stays float32). Halves the file
    for a change of the outputs at float16 rounding. Returns the file size in bytes (before, after)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    before = path.stat().st_size
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for initializer in list(graph.initializer):
        if initializer.data_type != TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(initializer)
        if weights.size < min_elements:
            continue
        half_name = f"{initializer.name}__float16"
        graph.initializer.remove(initializer)
        graph.initializer.append(numpy_helper.from_array(weights.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [initializer.name], to=TensorProto.FLOAT))
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return before, path.stat().st_size


def training_info(
    train: CropSet, data_description: str, epochs: int, crop_px: int, backbone: Path | None = None
) -> TrainingInfo:
    import torch

    counts = train.counts()
    return TrainingInfo(
        data_description=data_description,
        epochs=epochs,
        imgsz=crop_px,
        base_weights=None if backbone is None else f"{backbone} (backbone, layers 0-{BACKBONE_LAYERS - 1})",
        framework=f"torch {torch.__version__}",
        notes=(
            f"{counts['crops']} crops ({counts['objects']} objects, {counts['background']} background; "
            f"{counts['from_detector']} from the detector's candidates, the rest jittered ground truth)"
        ),
    )
