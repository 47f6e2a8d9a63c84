"""smartscreen synth output, label alignment, determinism; TIP in material space; mass estimate; palettes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartscreen.cli import main
from smartscreen.domain.render import MaterialClass
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.imaging import PALETTES, ImagingChain, ParcelSimulator, ScannerParams, project_threat, random_palette
from smartscreen.imaging.forward import SpectralForward
from smartscreen.imaging.synth import Recipe, load_recipe, synth_one

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "data.yaml"
    }


@pytest.mark.slow
def test_synth_twice_gives_identical_files(tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert main(["synth", "--out", str(tmp_path / run), "--count", "20", "--seed", "1", "--no-progress"]) == 0
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(a) == 80 and a == b
    data_a = (tmp_path / "a" / "data.yaml").read_text().replace(str((tmp_path / "a").resolve()), "X")
    data_b = (tmp_path / "b" / "data.yaml").read_text().replace(str((tmp_path / "b").resolve()), "X")
    assert data_a == data_b
    assert "train: images" in data_a and "14: firecracker" in data_a
    labels = [p.read_text() for p in sorted((tmp_path / "a" / "labels").glob("*.txt"))]
    assert any(labels) and not all(labels)  # threats and clean parcels


def test_data_yaml_loads_in_ultralytics_format(tmp_path: Path) -> None:
    import yaml

    assert main(["synth", "--out", str(tmp_path), "--count", "2", "--seed", "3", "--no-progress"]) == 0
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert Path(data["path"]) == tmp_path.resolve()
    assert data["names"] == dict(enumerate(CLASS_NAMES))
    assert (tmp_path / data["train"]).is_dir()


@pytest.mark.parametrize("index", range(4))
def test_labels_contain_each_objects_attenuation(index: int) -> None:
    """Each YOLO box, mapped back through the crop, holds >= 99 % of its threat's own attenuation and touches it."""
    recipe = Recipe(threat_probability=1.0, concealment_probability=0.5)
    item = synth_one(recipe, seed=5, index=index)
    forward = SpectralForward(item.params)
    png = cv2.imdecode(np.frombuffer(item.png, np.uint8), cv2.IMREAD_COLOR)
    h, w = png.shape[:2]
    x0c, y0c, _, _ = item.meta["crop_xyxy"]
    rows = [line.split() for line in item.label.splitlines()]
    assert len(rows) == len(item.parcel.threats) >= 1
    for row, threat, patches in zip(rows, item.parcel.threats, item.parcel.threat_patches, strict=True):
        assert int(row[0]) == CLASS_NAMES.index(threat.kind)
        cx, cy, bw, bh = (float(v) for v in row[1:])
        bx0, bx1 = (cx - bw / 2) * w + x0c, (cx + bw / 2) * w + x0c
        by0, by1 = (cy - bh / 2) * h + y0c, (cy + bh / 2) * h + y0c
        scan = np.zeros(item.parcel.high.shape, np.float32)
        for p in patches:  # the threat alone, in high-energy attenuation
            scan[p.rows, p.cols] += p.areal * float(np.interp(88.0, forward.model.energies_kev, forward.mu(p.material)))
        total = float(scan.sum())
        inside = float(scan[round(by0) : round(by1), round(bx0) : round(bx1)].sum())
        assert inside >= 0.99 * total, f"{threat.kind}: {inside / total:.3f} of its attenuation inside the box"
        visible = scan >= 0.02
        ys, xs = np.nonzero(visible)
        assert abs(ys.min() - by0) <= 1.5 and abs(ys.max() + 1 - by1) <= 1.5
        assert abs(xs.min() - bx0) <= 1.5 and abs(xs.max() + 1 - bx1) <= 1.5


def test_recipes_validate_and_test_differs_from_train() -> None:
    train = load_recipe(REPO / "datasets" / "synth-train.yaml")
    val = load_recipe(REPO / "datasets" / "synth-val.yaml")
    test = load_recipe(REPO / "datasets" / "synth-test.yaml")
    assert len({train.seed_offset, val.seed_offset, test.seed_offset}) == 3
    assert not set(test.scanner.pitch_mm) & set(train.scanner.pitch_mm)
    assert not set(test.scanner.channels) & set(train.scanner.channels)
    assert test.scanner.kvp[0] > train.scanner.kvp[1]
    assert test.scanner.dose_factor[1] < train.scanner.dose_factor[1]
    assert 0.0 < test.threat_probability < 1.0
    with pytest.raises(Exception, match="unknown class"):
        Recipe(classes=("bazooka",))


def test_tip_inserts_in_material_space_and_touches_only_the_box() -> None:
    params = ScannerParams()
    rng = np.random.default_rng(21)
    sim = ParcelSimulator(params, rng)
    calibration = sim.calibration()
    parcel = sim.simulate(threat_probability=0.0)
    chain = ImagingChain(params, calibration)
    before = chain.process(parcel.high, parcel.low)
    high, low, (x0, y0, x1, y1) = project_threat(parcel.high, parcel.low, calibration, "knife", rng, params=params)
    after = chain.process(high, low)
    outside = np.ones(high.shape, bool)
    outside[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = False
    assert np.array_equal(high[outside], parcel.high[outside]) and np.array_equal(low[outside], parcel.low[outside])
    region = (slice(y0, y1), slice(x0, x1))
    gained = after.attenuation_high[region] - before.attenuation_high[region]
    assert gained.max() > 0.5  # a steel blade
    metal = after.material[region] == MaterialClass.METAL
    assert metal.sum() > 20 and (before.material[region] == MaterialClass.METAL).sum() < metal.sum()


def test_tip_matches_the_forward_model_over_a_known_background() -> None:
    """Over a uniform water slab, TIP must give what simulating slab + threat together gives (not a product of images)."""
    params = ScannerParams(bad_pixel_fraction=0.0)
    rng = np.random.default_rng(8)
    sim = ParcelSimulator(params, rng)
    calibration = sim.calibration()
    slab = np.full((120, params.channels), 15.0, np.float32)  # 15 cm of water
    steel = np.zeros_like(slab)
    steel[40:80, 300:700] = 0.4 * 7.87  # 4 mm steel
    truth = sim.forward.attenuation({"water": slab, "steel": steel})
    high, low = sim.detector.expose(sim.forward.signal({"water": slab}), rng)
    # project a plate threat by using the simulator's exact geometry: a 4 mm steel plate is what we compare against
    from smartscreen.imaging import tip
    from smartscreen.imaging.calibration import calibrate

    calibrated = calibrate(high, low, calibration)
    new_high, new_low = high.copy(), low.copy()
    rs, cs = slice(30, 90), slice(290, 710)
    tip._reproject(
        new_high,
        new_low,
        calibrated,
        calibration,
        rs,
        cs,
        {"steel": steel[rs, cs]},
        sim.forward,
        chain_lut(params),
        rng,
    )
    measured = calibrate(new_high, new_low, calibration)
    inner = (slice(45, 75), slice(320, 680))
    assert float(np.median(measured.attenuation_high[inner])) == pytest.approx(float(truth[1][50, 500]), rel=0.03)
    assert float(np.median(measured.attenuation_low[inner])) == pytest.approx(float(truth[0][50, 500]), rel=0.03)


def chain_lut(params: ScannerParams):  # type: ignore[no-untyped-def]
    from smartscreen.imaging import MaterialLut

    return MaterialLut.for_spectrum(params)


def test_mass_estimate_is_close_to_the_true_mass() -> None:
    params = ScannerParams()
    rng = np.random.default_rng(4)
    sim = ParcelSimulator(params, rng)
    chain = ImagingChain(params, sim.calibration())
    errors = []
    for _ in range(4):
        parcel = sim.simulate(threat_probability=0.3)
        estimate = chain.estimate_mass_g(chain.process(parcel.high, parcel.low))
        errors.append(estimate / parcel.mass_g - 1.0)
    assert max(abs(e) for e in errors) < 0.3, errors


def test_every_palette_keeps_hue_meaning(default_scanner) -> None:  # type: ignore[no-untyped-def]
    params, sim, _calibration, chain = default_scanner
    maps = {name: np.zeros((30, params.channels), np.float32) for name in ("polyethylene", "aluminium", "iron")}
    maps["polyethylene"][:, 100:300] = 8.0
    maps["aluminium"][:, 400:600] = 4.0
    maps["iron"][:, 700:900] = 2.0
    high, low = sim.detector.expose(sim.forward.signal(maps), sim.rng)
    palettes = [*PALETTES.values(), *(random_palette(np.random.default_rng(i)) for i in range(6))]
    for palette in palettes:
        rgb = chain.process(high, low, palette=palette).rgb
        hues = []
        for c0 in (150, 450, 750):
            patch = np.ascontiguousarray(rgb[8:22, c0 : c0 + 100])
            hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV_FULL)
            hues.append(float(np.median(hsv[..., 0])) * 360 / 256)
        organic, inorganic, metal = hues
        assert organic < 65, (palette.name, hues)
        assert 65 <= inorganic <= 155, (palette.name, hues)
        assert metal >= 180, (palette.name, hues)


def test_workers_give_the_same_files(tmp_path: Path) -> None:
    for run, workers in (("one", "1"), ("two", "2")):
        args = [
            "synth",
            "--out",
            str(tmp_path / run),
            "--count",
            "3",
            "--seed",
            "9",
            "--no-progress",
            "--workers",
            workers,
        ]
        assert main(args) == 0
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_scanner_params_from_line_geometry_config() -> None:
    from smartscreen.config import ScannerGeometryConfig

    geometry = ScannerGeometryConfig(channels=768, channel_pitch_mm=0.8, line_pitch_mm=0.8, kvp=140)
    params = ScannerParams.from_geometry(geometry, belt_speed_mm_s=2500.0)
    assert (params.channels, params.kvp, params.line_pitch_mm, params.belt_speed_mm_s) == (768, 140.0, 0.8, 2500.0)
    assert params.line_rate_hz == pytest.approx(3125.0)


def test_raw_file_reproduces_the_training_crop(tmp_path: Path) -> None:
    """Inference framing = training framing: the stored raw scan, through the line's chain, gives the PNG's crop."""
    from smartscreen.imaging import ImagingChain, content_box, read_raw_scan

    assert main(["synth", "--out", str(tmp_path), "--count", "2", "--seed", "11", "--no-progress"]) == 0
    import json

    for meta_path in sorted((tmp_path / "meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        raw = read_raw_scan(tmp_path / "raw" / f"{meta['id']}.npz")
        rendered = ImagingChain.for_raw_scan(raw).process(raw.high, raw.low)
        assert list(content_box(rendered.material)) == meta["crop_xyxy"]
        png = cv2.imread(str(tmp_path / "images" / f"{meta['id']}.png"))
        x0, y0, x1, y1 = meta["crop_xyxy"]
        assert png.shape[:2] == (y1 - y0, x1 - x0)


def test_clutter_emphasis_makes_hard_negatives_frequent_and_is_validated() -> None:
    from smartscreen.imaging.objects import CLUTTER, random_clutter

    def kinds(emphasis: dict[str, float] | None) -> list[str]:
        rng = np.random.default_rng(7)
        return [random_clutter(rng, emphasis).kind for _ in range(300)]

    plain = kinds(None)
    assert plain == kinds({k: 1.0 for k in CLUTTER})  # same draws: existing recipes keep their files
    food_share = plain.count("food") / len(plain)
    boosted = kinds({"food": 10.0, "umbrella": 0.0})
    assert boosted.count("food") / len(boosted) > 2.5 * food_share
    assert "umbrella" in plain and "umbrella" not in boosted
    with pytest.raises(Exception, match="unknown clutter kind"):
        Recipe(clutter_emphasis={"anvil": 2.0})
    with pytest.raises(Exception, match="within 0-100"):
        Recipe(clutter_emphasis={"food": -1.0})


def test_threat_emphasis_draws_hard_classes_more_often_and_is_validated() -> None:
    from collections import Counter

    from smartscreen.imaging.scanner import ScannerParams
    from smartscreen.imaging.simulator import ParcelSimulator

    def class_counts(emphasis: dict[str, float] | None) -> Counter[str]:
        sim = ParcelSimulator(ScannerParams(channels=256), np.random.default_rng(3))
        counts: Counter[str] = Counter()
        for _ in range(40):
            parcel = sim.simulate(1.0, threat_classes=("lighter", "gun", "knife"), threat_emphasis=emphasis)
            counts.update(placed.kind for placed in parcel.threats)
        return counts

    plain = class_counts(None)
    boosted = class_counts({"lighter": 20.0, "knife": 0.0})
    assert boosted["lighter"] > 2 * plain["lighter"]
    assert boosted["knife"] == 0 and plain["knife"] > 0
    with pytest.raises(Exception, match="unknown threat class"):
        Recipe(threat_emphasis={"anvil": 2.0})
    with pytest.raises(Exception, match="within 0-100"):
        Recipe(threat_emphasis={"lighter": -1.0})
