"""Converters on small fixtures in every format, built here, including broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from smartscreen.cli import main
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import DatasetError
from smartscreen.training.classmap import ClassMap, ClassMapFile, Outcome
from smartscreen.training.datayaml import fingerprint, load_data_yaml
from smartscreen.training.readers import read_coco, read_opixray, read_synth, read_voc, read_yolo
from smartscreen.training.samples import LabelledBox, LabelledImage
from smartscreen.training.writer import UnknownPolicy, load_image_bgr, write_yolo_dataset
from tests.training.fixtures import BLUE, draw_parcel, make_coco, make_yolo_dataset

ROOT = Path(__file__).resolve().parents[2]
CLASS_MAPS = ROOT / "datasets" / "class-maps"


def _labels(out: Path) -> dict[str, list[list[float]]]:
    result: dict[str, list[list[float]]] = {}
    for txt in sorted((out / "labels").rglob("*.txt")):
        result[txt.stem] = [[float(v) for v in line.split()] for line in txt.read_text().splitlines() if line.strip()]
    return result


def _image_for(out: Path, stem: str) -> np.ndarray:
    found = [p for p in (out / "images").rglob(f"{stem}.*")]
    assert len(found) == 1
    image = cv2.imread(str(found[0]))
    assert image is not None
    return image


def test_class_map_is_case_and_separator_insensitive_and_validates_targets(tmp_path: Path) -> None:
    cmap = ClassMap.from_model(ClassMapFile(classes={"Portable_Charger_1": "powerbank"}, ignore=["Laptop"]))
    assert cmap.resolve("portable charger 1").target == "powerbank"
    assert cmap.resolve("PORTABLE-CHARGER-1").outcome is Outcome.MAPPED
    assert cmap.resolve("laptop").outcome is Outcome.IGNORED
    assert cmap.resolve("Tablet").outcome is Outcome.UNKNOWN
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  Gun: pistol\n")
    with pytest.raises(DatasetError, match="pistol"):
        ClassMap.from_file(bad)


@pytest.mark.parametrize("path", sorted(CLASS_MAPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_class_maps_are_valid(path: Path) -> None:
    cmap = ClassMap.from_file(path)
    assert cmap.mapping, f"{path.name} maps nothing"


def test_coco_with_broken_annotations_reported_by_file(tmp_path: Path) -> None:
    ann, images = make_coco(tmp_path / "src", n=3)
    doc = json.loads(ann.read_text())
    doc["annotations"].append({"id": 900, "image_id": 1, "category_id": 7, "bbox": [5, 5, 0, 10]})  # empty box
    doc["annotations"].append({"id": 901, "image_id": 2, "category_id": 99, "bbox": [5, 5, 10, 10]})  # unknown cat
    doc["annotations"].append({"id": 902, "image_id": 77, "category_id": 7, "bbox": [5, 5, 10, 10]})  # unknown image
    doc["annotations"].append({"id": 903, "image_id": 1, "category_id": 7, "bbox": "oops"})  # malformed
    doc["images"].append({"id": 50, "file_name": "missing.png", "width": 10, "height": 10})
    ann.write_text(json.dumps(doc))
    result = read_coco(ann, images)
    problems = {(i.file, i.action) for i in result.issues}
    assert ("xray (0).png", "dropped box") in problems  # the empty box, named by image file
    assert ("xray (1).png", "skipped image") in problems  # unknown category: the image is not half-labelled
    assert ("missing.png", "skipped image") in problems
    assert any("unknown image 77" in i.problem for i in result.issues)
    assert any("malformed" in i.problem for i in result.issues)
    assert sorted(i.image_path.name for i in result.images) == ["xray (0).png", "xray (2).png"]

    out = tmp_path / "out"
    report = write_yolo_dataset(
        result.images, out, class_map=ClassMap.from_file(CLASS_MAPS / "pidray.yaml"), issues=result.issues
    )
    assert sum(report.images_written.values()) == 2
    # labels line up with the drawn objects: the box centre of every gun is blue in the written image
    for stem, rows in _labels(out).items():
        image = _image_for(out, stem)
        h, w = image.shape[:2]
        assert " " not in stem and "(" not in stem  # sanitised names
        for cls, cx, cy, bw, bh in rows:
            assert CLASS_NAMES[int(cls)] in ("gun", "knife")
            if CLASS_NAMES[int(cls)] == "gun":
                x1, y1 = int((cx - bw / 2) * w) + 1, int((cy - bh / 2) * h) + 1
                assert tuple(int(v) for v in image[y1, x1]) == BLUE  # the gun's top-left corner is drawn there
    data = load_data_yaml(out / "data.yaml")
    assert data.class_names == CLASS_NAMES
    saved = json.loads((out / "conversion-report.json").read_text())
    assert any(i["file"] == "xray (0).png" for i in saved["issues"])


def _voc_xml(filename: str, objects: list[tuple[str, int, int, int, int]], size: tuple[int, int] = (128, 96)) -> str:
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{objs}</annotation>"
    )


def test_voc_good_broken_and_unlabelled(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    img_dir, ann_dir = tmp_path / "JPEGImages", tmp_path / "Annotations"
    img_dir.mkdir()
    ann_dir.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        image, _ = draw_parcel(rng, 128, 96, 0)
        cv2.imwrite(str(img_dir / f"{name}.jpg"), image)
    (ann_dir / "a.xml").write_text(_voc_xml("a.jpg", [("Gun", 10, 10, 50, 40), ("Knife", 60, 20, 100, 30)]))
    (ann_dir / "b.xml").write_text("<annotation><filename>b.jpg</filename><object>")  # truncated XML
    (ann_dir / "c.xml").write_text(_voc_xml("c.jpg", [("Gun", 50, 40, 10, 10), ("Wrench", 5, 5, 40, 40)]))  # inverted
    (ann_dir / "d.xml").write_text(_voc_xml("nothere.jpg", [("Gun", 1, 1, 5, 5)]))  # image missing
    (ann_dir / "f.xml").write_text(_voc_xml("f.jpg", [("Gun", 1, 1, 5, 5)]))  # image missing
    result = read_voc(ann_dir, img_dir)
    by_file = {i.file: i for i in result.issues}
    assert "unreadable XML" in by_file["b.xml"].problem
    assert "inverted" in next(i.problem for i in result.issues if i.file == "c.xml")
    assert by_file["f.xml"].action == "skipped image"
    assert by_file["e.jpg"].problem == "image has no annotation file"
    got = {i.image_path.name: [b.class_name for b in i.boxes] for i in result.images}
    assert got["a.jpg"] == ["Gun", "Knife"]
    assert got["c.jpg"] == ["Wrench"]
    assert got["d.jpg"] == ["Gun"]  # found by the XML's stem when <filename> is wrong


def test_opixray_hixray_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    img_dir, ann_dir = tmp_path / "images", tmp_path / "ann"
    img_dir.mkdir()
    ann_dir.mkdir()
    for name in ("009000", "009001", "009002", "009003"):
        image, _ = draw_parcel(rng, 128, 96, 0)
        cv2.imwrite(str(img_dir / f"{name}.jpg"), image)
    (ann_dir / "009000.txt").write_text(
        "009000.jpg Straight_Knife 10 20 60 40\n009000.jpg Portable Charger 1 70 10 120 50\n"
    )
    (ann_dir / "009001.txt").write_text("")  # background image
    (ann_dir / "009002.txt").write_text("009002.jpg Folding_Knife 10 20\n009002.jpg Folding_Knife a b c d\n")
    (ann_dir / "009003.txt").write_text("009003.jpg,Scissor,5,5,40,30\n")
    (ann_dir / "009009.txt").write_text("009009.jpg Scissor 5 5 40 30\n")
    result = read_opixray(ann_dir, img_dir)
    got = {i.image_path.stem: [b.class_name for b in i.boxes] for i in result.images}
    assert got["009000"] == ["Straight_Knife", "Portable_Charger_1"]
    assert got["009001"] == []
    assert got["009003"] == ["Scissor"]
    assert "009002" not in got
    files = {(i.file, i.action) for i in result.issues}
    assert ("009002.txt", "skipped image") in files and ("009009.txt", "skipped image") in files
    assert any("expected 6 fields" in i.problem for i in result.issues)

    out = tmp_path / "out"
    report = write_yolo_dataset(result.images, out, class_map=ClassMap.from_file(CLASS_MAPS / "opixray.yaml"))
    # Portable_Charger_1 is not an OPIXray class: unknown, reported, and its image left out
    assert report.unknown_per_source_class == {"Portable_Charger_1": 1}
    assert report.unknown_examples["Portable_Charger_1"] == ["009000.jpg"]
    assert sum(report.images_written.values()) == 2
    assert report.negatives_written == 1
    hix = write_yolo_dataset(
        result.images,
        tmp_path / "out2",
        class_map=ClassMap.from_file(CLASS_MAPS / "hixray.yaml"),
        unknown=UnknownPolicy.DROP_BOX,
    )
    assert hix.boxes_per_class == {"powerbank": 1}
    with pytest.raises(DatasetError, match="Straight_Knife"):
        write_yolo_dataset(
            result.images,
            tmp_path / "out3",
            class_map=ClassMap.from_file(CLASS_MAPS / "hixray.yaml"),
            unknown=UnknownPolicy.ERROR,
        )
    assert not (tmp_path / "out3").exists()


def test_yolo_broken_labels_rgba_grey_16bit(tmp_path: Path) -> None:
    data_yaml = make_yolo_dataset(tmp_path / "src", n_train=4, n_val=2, n_clean=1)
    train_imgs = tmp_path / "src" / "images" / "train"
    labels = tmp_path / "src" / "labels" / "train"
    # RGBA with a transparent border, grey, and 16-bit grey images
    rgba = np.zeros((96, 128, 4), np.uint8)
    rgba[20:60, 30:90] = (200, 90, 20, 255)
    cv2.imwrite(str(train_imgs / "rgba.png"), rgba)
    (labels / "rgba.txt").write_text(f"{CLASS_NAMES.index('gun')} 0.46875 0.41667 0.46875 0.41667\n")
    cv2.imwrite(str(train_imgs / "grey.png"), np.full((50, 60), 128, np.uint8))
    (labels / "grey.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5\n99 0.5 0.5 0.1 0.1\n3 0.1 0.1 0.9 0.1 0.9 0.5\n")
    cv2.imwrite(str(train_imgs / "deep.png"), np.full((40, 40), 40000, np.uint16))
    (labels / "deep.txt").write_text("")
    cv2.imwrite(str(train_imgs / "nolabel.png"), np.zeros((10, 10, 3), np.uint8))
    (train_imgs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (labels / "corrupt.txt").write_text("")
    result = read_yolo(data_yaml)
    problems = {(i.file, i.problem) for i in result.issues}
    assert ("grey.txt", "line 2: expected 5 fields, got 3") in problems
    assert any(f == "grey.txt" and "class id 99" in p for f, p in problems)
    assert any(f == "nolabel.png" and "no label file" in p for f, p in problems)
    grey = next(i for i in result.images if i.image_path.name == "grey.png")
    assert [b.class_name for b in grey.boxes] == ["baton", "powerbank"]  # the polygon line became a box

    out = tmp_path / "out"
    report = write_yolo_dataset(result.images, out, class_map=ClassMap.identity(), issues=result.issues)
    assert any(i.file == "corrupt.png" and i.action == "skipped image" for i in report.issues)
    written = {p.stem.split("_")[1]: p for p in (out / "images").rglob("*.png")}
    rgba_out = cv2.imread(str(written["rgba"]), cv2.IMREAD_UNCHANGED)
    assert rgba_out.shape == (96, 128, 3)
    assert tuple(rgba_out[0, 0]) == (255, 255, 255)  # transparent -> the white X-ray background
    assert tuple(rgba_out[40, 60]) == (200, 90, 20)
    assert cv2.imread(str(written["grey"]), cv2.IMREAD_UNCHANGED).shape == (50, 60, 3)
    deep, converted = load_image_bgr(written["deep"])
    assert deep.dtype == np.uint8 and int(deep[0, 0, 0]) == round(40000 * 255 / 65535) and not converted


def test_box_clipping_and_unusable_boxes_reported(tmp_path: Path) -> None:
    image, _ = draw_parcel(np.random.default_rng(0), 100, 80, 0)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), image)
    samples = [
        LabelledImage(path, (LabelledBox("gun", -10, 10, 50, 40),), source="t"),
        LabelledImage(path.with_name("q.png"), (LabelledBox("gun", 200, 200, 300, 300),), source="t"),
    ]
    cv2.imwrite(str(samples[1].image_path), image)
    report = write_yolo_dataset(samples, tmp_path / "out", class_map=ClassMap.identity(), val_fraction=0.0)
    actions = {(i.file, i.action) for i in report.issues}
    assert ("p.png", "clipped box") in actions
    assert ("q.png", "dropped box") in actions and ("q.png", "skipped image") in actions
    rows = next(iter(_labels(tmp_path / "out").values()))
    assert rows == [[6.0, 0.25, 0.3125, 0.5, 0.375]]  # clipped to x 0..50


def test_synth_output_and_cli_convert_stats_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = tmp_path / "synth"
    make_yolo_dataset(synth, n_train=6, n_val=3, n_clean=2)
    (synth / "meta").mkdir()
    result = read_synth(synth)
    assert len(result.images) == 9 and {i.source for i in result.images} == {"synth"}
    assert main(["dataset", "convert", str(synth), "--format", "synth", "--out", str(tmp_path / "a")]) == 0
    other = tmp_path / "other"
    make_yolo_dataset(other, n_train=3, n_val=1, seed=5)
    # the same classes in another id order: merge must go by name
    doc = yaml.safe_load((other / "data.yaml").read_text())
    names = list(CLASS_NAMES)
    swapped = names.copy()
    gi, ki = names.index("gun"), names.index("knife")
    swapped[gi], swapped[ki] = swapped[ki], swapped[gi]
    doc["names"] = dict(enumerate(swapped))
    (other / "data.yaml").write_text(yaml.safe_dump(doc))
    assert main(["dataset", "merge", str(tmp_path / "a"), str(other), "--out", str(tmp_path / "m")]) == 0
    merged = read_yolo(tmp_path / "m" / "data.yaml")
    assert len(merged.images) == 13
    orig = read_yolo(other / "data.yaml")
    orig_counts = sorted(b.class_name for i in orig.images for b in i.boxes)
    merged_from_other = sorted(b.class_name for i in merged.images if "other" in i.image_path.name for b in i.boxes)
    assert merged_from_other == orig_counts
    capsys.readouterr()
    assert main(["dataset", "stats", str(tmp_path / "m"), "--json", str(tmp_path / "s.json")]) == 0
    stats = json.loads((tmp_path / "s.json").read_text())
    total = sum(s["boxes"] for s in stats["splits"].values())
    assert total == sum(len(i.boxes) for i in merged.images)
    assert sum(s["negatives"] for s in stats["splits"].values()) == sum(1 for i in merged.images if not i.boxes)
    assert (tmp_path / "m" / "stats.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "boxes per class" in out


def test_fingerprint_changes_with_labels(tmp_path: Path) -> None:
    data_yaml = make_yolo_dataset(tmp_path / "d", n_train=3, n_val=1)
    data = load_data_yaml(data_yaml)
    h1, n = fingerprint(data, ("train",))
    assert n == 3
    label = next((tmp_path / "d" / "labels" / "train").glob("*.txt"))
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
    assert fingerprint(data, ("train",))[0] != h1


def test_convert_without_class_map_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann, _ = make_coco(tmp_path, n=1)
    assert main(["dataset", "convert", str(ann), "--format", "coco", "--out", str(tmp_path / "o")]) == 1
    assert "--class-map" in capsys.readouterr().err
