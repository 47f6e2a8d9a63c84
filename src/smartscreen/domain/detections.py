"""Detections: parallel numpy arrays of boxes, scores and class ids in scan pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Detections:
    """Objects found in one image.

    Attributes:
        xyxy: boxes ``(n, 4)`` float32 as x1, y1, x2, y2 in pixels of the source image
            (x = detector channel, y = scan line).
        scores: ``(n,)`` float32 confidences in [0, 1].
        class_ids: ``(n,)`` int32 indices into ``class_names``.
        class_names: the label table of the model that produced them.
        model_id: ``<name>@<version>`` of that model, for the audit trail.
    """

    xyxy: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int32]
    class_names: tuple[str, ...]
    model_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.xyxy, np.ndarray) or self.xyxy.dtype != np.float32:
            raise TypeError("xyxy must be a float32 numpy array")
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (n, 4), got {self.xyxy.shape}")
        n = self.xyxy.shape[0]
        if not isinstance(self.scores, np.ndarray) or self.scores.dtype != np.float32 or self.scores.shape != (n,):
            raise ValueError(f"scores must be float32 with shape ({n},), got {getattr(self.scores, 'shape', None)}")
        if (
            not isinstance(self.class_ids, np.ndarray)
            or self.class_ids.dtype != np.int32
            or self.class_ids.shape != (n,)
        ):
            raise ValueError(f"class_ids must be int32 with shape ({n},), got {getattr(self.class_ids, 'shape', None)}")
        if n and (int(self.class_ids.min()) < 0 or int(self.class_ids.max()) >= len(self.class_names)):
            raise ValueError(f"class_ids must index class_names (0..{len(self.class_names) - 1})")
        if n and bool(np.any(self.xyxy[:, 2:] < self.xyxy[:, :2])):
            raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")

    @classmethod
    def empty(cls, class_names: tuple[str, ...], model_id: str) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_names=class_names,
            model_id=model_id,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def filter(self, mask: npt.NDArray[np.bool_]) -> Detections:
        """Keep the detections where ``mask`` is True."""
        if mask.dtype != np.bool_ or mask.shape != (len(self),):
            raise ValueError(f"mask must be bool with shape ({len(self)},), got {mask.dtype} {mask.shape}")
        return Detections(
            xyxy=self.xyxy[mask],
            scores=self.scores[mask],
            class_ids=self.class_ids[mask],
            class_names=self.class_names,
            model_id=self.model_id,
        )

    def labels(self) -> tuple[str, ...]:
        return tuple(self.class_names[int(i)] for i in self.class_ids)

    def max_score_by_class(self) -> dict[str, float]:
        """Highest score seen for each class present."""
        best: dict[str, float] = {}
        for name, score in zip(self.labels(), self.scores.tolist(), strict=True):
            best[name] = max(best.get(name, 0.0), float(score))
        return best
