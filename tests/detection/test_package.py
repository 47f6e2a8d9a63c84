from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smartscreen.detection.package import (
    ModelManifest,
    ModelPackage,
    TrainingInfo,
    load_model_package,
    parse_manifest,
    write_model_package,
)
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import ModelPackageError
from tests.detection.tiny_model import build_tiny_onnx


def _edit(directory: Path, **changes: object) -> None:
    path = directory / "model.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_written_package_loads_with_the_schema(tiny_package: ModelPackage) -> None:
    loaded = load_model_package(tiny_package.directory)
    assert loaded.manifest == tiny_package.manifest
    m = loaded.manifest
    assert m.class_names == CLASS_NAMES
    assert m.input.name == "images" and m.output.name == "output0"
    assert m.input.dynamic_batch and m.input.dynamic_hw  # read from the ONNX graph
    assert m.output.format == "yolo_v8"
    assert loaded.model_id == "tiny-cells@0.1.0"
    assert len(m.sha256) == 64


def test_missing_onnx_is_named(package_copy: Path) -> None:
    (package_copy / "model.onnx").unlink()
    with pytest.raises(ModelPackageError, match=r"lacks model\.onnx"):
        load_model_package(package_copy)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="does not exist"):
        load_model_package(tmp_path / "nope")


def test_wrong_hash_says_what_to_do(package_copy: Path) -> None:
    with (package_copy / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelPackageError, match=r"sha256 .* re-export"):
        load_model_package(package_copy)


def test_class_count_contradicting_the_onnx_output(package_copy: Path) -> None:
    _edit(package_copy, class_names=list(CLASS_NAMES[:-1]))
    with pytest.raises(ModelPackageError, match=r"15 classes, but class_names lists 14"):
        load_model_package(package_copy)


def test_input_name_contradicting_the_onnx_graph(package_copy: Path) -> None:
    _edit(package_copy, input__name="pixels")
    with pytest.raises(ModelPackageError, match=r"input\.name is 'pixels' but .* inputs are \['images'\]"):
        load_model_package(package_copy)


def test_static_onnx_with_yaml_claiming_dynamic_axes(tmp_path: Path) -> None:
    pkg = write_model_package(
        tmp_path / "static",
        build_tiny_onnx(tmp_path / "s.onnx", dynamic=False, size_hw=(320, 480)),
        name="static",
        version="1",
    )
    assert not pkg.manifest.input.dynamic_hw and pkg.manifest.input.size_hw == (320, 480)
    load_model_package(pkg.directory)
    _edit(pkg.directory, input__dynamic_hw=True)
    with pytest.raises(ModelPackageError, match=r"dynamic_hw is true but .* fixed 320x480 input"):
        load_model_package(pkg.directory)
    _edit(pkg.directory, input__dynamic_hw=False, input__size_hw=[320, 320])
    with pytest.raises(ModelPackageError, match=r"set size_hw: \[320, 480\]"):
        load_model_package(pkg.directory)


def test_invalid_fields_are_listed_by_path() -> None:
    text = yaml.safe_dump(
        {
            "name": "m",
            "version": "1",
            "sha256": "0" * 64,
            "input": {"size_hw": [600, 640], "layout": "NHWC"},
            "nms": {"iou": 0},
        }
    )
    with pytest.raises(ModelPackageError) as info:
        parse_manifest(text, source="x/model.yaml")
    message = str(info.value)
    assert "x/model.yaml is invalid" in message
    assert "input.layout" in message and "nms.iou" in message
    bad_size = yaml.safe_dump({"name": "m", "version": "1", "sha256": "0" * 64, "input": {"size_hw": [600, 640]}})
    with pytest.raises(ModelPackageError, match=r"input: .*multiples of stride_px=32"):
        parse_manifest(bad_size)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ModelPackageError, match="colour_ordr"):
        parse_manifest(yaml.safe_dump({"name": "m", "version": "1", "sha256": "0" * 64, "colour_ordr": "RGB"}))


def test_write_refuses_a_mismatching_class_list_and_leaves_nothing(tmp_path: Path) -> None:
    onnx_file = build_tiny_onnx(tmp_path / "m.onnx", n_classes=3)
    with pytest.raises(ModelPackageError, match="nc=15"):
        write_model_package(tmp_path / "pkg", onnx_file, name="m", version="1")
    assert not (tmp_path / "pkg" / "model.yaml").exists()
    pkg = write_model_package(
        tmp_path / "pkg",
        onnx_file,
        name="m",
        version="1",
        class_names=("a", "b", "c"),
        training=TrainingInfo(data_description="d", epochs=1),
    )
    assert pkg.manifest.training is not None and pkg.manifest.training.epochs == 1
    (tmp_path / "pkg" / "MODEL_CARD.md").write_text("card")
    with pytest.raises(ModelPackageError, match="overwrite"):
        write_model_package(tmp_path / "pkg", onnx_file, name="m", version="2", class_names=("a", "b", "c"))
    again = write_model_package(
        tmp_path / "pkg", onnx_file, name="m", version="2", class_names=("a", "b", "c"), overwrite=True
    )
    assert again.manifest.version == "2"
    assert (tmp_path / "pkg" / "MODEL_CARD.md").read_text() == "card"  # other files are kept
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["MODEL_CARD.md", "model.onnx", "model.yaml"]


def test_manifest_yaml_round_trip(tiny_package: ModelPackage) -> None:
    text = tiny_package.manifest_path.read_text()
    assert parse_manifest(text) == tiny_package.manifest
    assert isinstance(tiny_package.manifest, ModelManifest)


def test_update_rewrites_only_the_given_fields(package_copy: Path) -> None:
    from smartscreen.detection.package import Metrics, update_model_package

    before = load_model_package(package_copy).manifest
    updated = update_model_package(package_copy, metrics=Metrics(dataset="synth-val", map50=0.8), version="0.2.0")
    after = load_model_package(package_copy).manifest
    assert after == updated.manifest
    assert after.metrics is not None and after.metrics.map50 == 0.8 and after.version == "0.2.0"
    assert after.input == before.input and after.crop == before.crop and after.sha256 == before.sha256
    with pytest.raises(ModelPackageError, match="per_class_ap50"):
        update_model_package(package_copy, metrics=Metrics(dataset="d", per_class_ap50={"unicorn": 0.5}))
