"""A tiny, predictable YOLO-format ONNX detector built with ``onnx.helper`` (no download).

The model cuts its input into ``stride x stride`` cells. Each cell is one anchor:
its box is the cell itself (centre of the cell, width and height ``box_px``), and
the score of class ``c`` (c < 3) is ``relu(2.5 * darkness_c - 1.5)`` clipped to 1,
where ``darkness_c = 1 - mean of channel c over the cell`` (input scaled to [0, 1]).
So a cell that is black in channel ``c`` scores 1 for class ``c``, white and the
letterbox grey (114) score 0. Classes >= 3 always score 0. Output: ``(batch, 4 + nc, N)``.

Other test suites may use :func:`build_tiny_package` for a real package on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from smartscreen.detection.package import ModelPackage, TrainingInfo, write_model_package
from smartscreen.domain.taxonomy import CLASS_NAMES


def build_tiny_onnx(
    path: Path,
    n_classes: int = len(CLASS_NAMES),
    stride: int = 32,
    box_px: float | None = None,
    dynamic: bool = True,
    size_hw: tuple[int, int] = (640, 640),
) -> Path:
    box = float(stride if box_px is None else box_px)
    weight = np.zeros((n_classes, 3, 1, 1), np.float32)
    for c in range(min(3, n_classes)):
        weight[c, c, 0, 0] = -2.5  # darkness = 1 - mean: 2.5 * (1 - m) - 1.5 = 1 - 2.5 m
    bias = np.zeros((n_classes,), np.float32)
    bias[: min(3, n_classes)] = 1.0
    inits = [
        numpy_helper.from_array(weight, "cls_w"),
        numpy_helper.from_array(bias, "cls_b"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(float(stride), np.float32), "stride"),
        numpy_helper.from_array(np.array(box, np.float32), "box"),
        numpy_helper.from_array(np.array(3, np.int64), "axis_w"),
        numpy_helper.from_array(np.array(2, np.int64), "axis_h"),
        numpy_helper.from_array(np.array([0, 4 + n_classes, -1], np.int64), "out_shape"),
        numpy_helper.from_array(np.array([0], np.int64), "ch_slice_start"),
        numpy_helper.from_array(np.array([1], np.int64), "ch_slice_end"),
        numpy_helper.from_array(np.array([1], np.int64), "ch_axis"),
    ]
    nodes = [
        helper.make_node(
            "AveragePool", ["images"], ["pooled"], kernel_shape=[stride, stride], strides=[stride, stride]
        ),
        helper.make_node("Conv", ["pooled", "cls_w", "cls_b"], ["cls_lin"]),
        helper.make_node("Clip", ["cls_lin", "zero", "one"], ["scores"]),
        # one channel of the pooled map -> ones of shape (B, 1, h, w)
        helper.make_node("Slice", ["pooled", "ch_slice_start", "ch_slice_end", "ch_axis"], ["p0"]),
        helper.make_node("Mul", ["p0", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "one"], ["ones"]),
        helper.make_node("CumSum", ["ones", "axis_w"], ["col1"]),
        helper.make_node("CumSum", ["ones", "axis_h"], ["row1"]),
        helper.make_node("Sub", ["col1", "half"], ["col"]),
        helper.make_node("Sub", ["row1", "half"], ["row"]),
        helper.make_node("Mul", ["col", "stride"], ["cx"]),
        helper.make_node("Mul", ["row", "stride"], ["cy"]),
        helper.make_node("Mul", ["ones", "box"], ["bw"]),
        helper.make_node("Concat", ["cx", "cy", "bw", "bw", "scores"], ["stacked"], axis=1),
        helper.make_node("Reshape", ["stacked", "out_shape"], ["output0"]),
    ]
    in_shape: list[int | str] = ["batch", 3, "height", "width"] if dynamic else [1, 3, *size_hw]
    graph = helper.make_graph(
        nodes,
        "tiny_cell_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + n_classes, "anchors"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="smartscreen-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_tiny_package(
    directory: Path,
    n_classes: int = len(CLASS_NAMES),
    stride: int = 32,
    size_hw: tuple[int, int] = (640, 640),
    dynamic: bool = True,
    **kwargs: object,
) -> ModelPackage:
    """A complete model package around the tiny model (class names from the taxonomy)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    onnx_file = build_tiny_onnx(
        directory.parent / f"{directory.name}-src.onnx", n_classes, stride, dynamic=dynamic, size_hw=size_hw
    )
    names = CLASS_NAMES[:n_classes] if n_classes <= len(CLASS_NAMES) else tuple(f"c{i}" for i in range(n_classes))
    return write_model_package(
        directory,
        onnx_file,
        name="tiny-cells",
        version="0.1.0",
        class_names=names,
        input_size_hw=size_hw,
        architecture="tiny-cells",
        training=TrainingInfo(data_description="none: analytic test model"),
        **kwargs,  # type: ignore[arg-type]
    )
