"""Synthetic dataset writer behind ``smartscreen synth``: recipes, per-parcel files and ``data.yaml``.

Layout of ``DIR`` (documented in ``datasets/README.md``)::

    images/<id>.png   pseudo-colour RGB, cropped to the parcel (+16 px margin)
    labels/<id>.txt   YOLO "class cx cy w h" normalised to the cropped image; empty for clean parcels
    raw/<id>.npz      raw scan, full scanner width (datasets/RAW_FORMAT.md)
    meta/<id>.json    objects, crop offset, scanner parameters, palette, declared contents, mass
    data.yaml         ultralytics dataset file (path, train, val, names)

Every file is a pure function of (recipe, seed, index): byte-identical across runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from threadpoolctl import threadpool_limits

from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import ConfigError
from smartscreen.imaging.calibration import Calibration, calibrate
from smartscreen.imaging.chain import content_box, estimate_mass_g
from smartscreen.imaging.lut import MaterialLut
from smartscreen.imaging.objects import CLUTTER
from smartscreen.imaging.palette import PALETTES, Palette, random_palette
from smartscreen.imaging.rawio import raw_meta, write_raw_scan
from smartscreen.imaging.render import render
from smartscreen.imaging.scanner import ScannerParams, ScannerRandomisation
from smartscreen.imaging.simulator import ParcelSimulator, SimulatedParcel
from smartscreen.strict_yaml import load_yaml

Range = Annotated[tuple[float, float], Field(description="[min, max]; equal values fix the parameter")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"range min {value[0]} is above max {value[1]}")
    return value


class ScannerRecipe(_Strict):
    """Scanner parameters drawn per parcel (uniform in each range)."""

    kvp: Range = (160.0, 160.0)
    filtration_al_mm: Range = (2.0, 2.0)
    filter_cu_mm: Range = (0.5, 0.5)
    le_csi_mm: Range = (0.3, 0.3)
    he_csi_mm: Range = (4.0, 4.0)
    pitch_mm: tuple[float, ...] = Field(default=(1.6,), min_length=1, description="Pixel pitch choices (mm).")
    channels: tuple[int, ...] = Field(default=(1024,), min_length=1, description="Detector channel count choices.")
    dose_factor: Range = (1.0, 1.0)
    read_noise_adu: Range = (5.0, 5.0)
    gain_spread: Range = (0.05, 0.05)
    bad_pixel_fraction: Range = (0.002, 0.002)
    psf_sigma_px: Range = (0.45, 0.45)
    magnification: Range = (1.3, 1.3)
    belt_speed_mm_s: Range = (2500.0, 2500.0)
    line_pitch_ratio: Range = (1.0, 1.0)
    tube_current_ma: float = Field(default=8.0, gt=0)
    bit_depth: int = Field(default=16, ge=12, le=16)
    scanner_id: str = "sim"

    _ranges = field_validator(
        "kvp",
        "filtration_al_mm",
        "filter_cu_mm",
        "le_csi_mm",
        "he_csi_mm",
        "dose_factor",
        "read_noise_adu",
        "gain_spread",
        "bad_pixel_fraction",
        "psf_sigma_px",
        "magnification",
        "belt_speed_mm_s",
        "line_pitch_ratio",
    )(_check_range)

    @field_validator("belt_speed_mm_s")
    @classmethod
    def _positive_speed(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] <= 0:
            raise ValueError("belt speed must be positive")
        return value

    def randomisation(self) -> ScannerRandomisation:
        return ScannerRandomisation(
            kvp=self.kvp,
            filtration_al_mm=self.filtration_al_mm,
            filter_cu_mm=self.filter_cu_mm,
            le_csi_mm=self.le_csi_mm,
            he_csi_mm=self.he_csi_mm,
            pitch_mm=self.pitch_mm,
            channels=self.channels,
            dose_factor=self.dose_factor,
            read_noise_adu=self.read_noise_adu,
            gain_spread=self.gain_spread,
            bad_pixel_fraction=self.bad_pixel_fraction,
            psf_sigma_px=self.psf_sigma_px,
            magnification=self.magnification,
            belt_speed_mm_s=self.belt_speed_mm_s,
            line_pitch_ratio=self.line_pitch_ratio,
        )

    def base(self) -> ScannerParams:
        return ScannerParams(
            scanner_id=self.scanner_id,
            belt_speed_mm_s=self.belt_speed_mm_s[0],
            tube_current_ma=self.tube_current_ma,
            bit_depth=self.bit_depth,
        )


def _checked_emphasis(field_name: str, value: dict[str, float], known: tuple[str, ...], what: str) -> dict[str, float]:
    """A frequency-multiplier map: known keys only, multipliers within 0-100."""
    unknown = sorted(k for k in value if k not in known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {', '.join(known)}")
    out_of_range = sorted(k for k, v in value.items() if not (0.0 <= v <= 100.0))
    if out_of_range:
        raise ValueError(f"{field_name} must be within 0-100, not for {out_of_range}")
    return value


class Recipe(_Strict):
    """A synthetic-data recipe (``datasets/synth-*.yaml``)."""

    name: str = Field(default="synth", pattern=r"^[A-Za-z0-9_.-]+$")
    split: str = Field(default="train", pattern=r"^[A-Za-z0-9_.-]+$")
    seed_offset: int = Field(
        default=0, ge=0, description="Added to --seed: recipes with other offsets never share parcels."
    )
    threat_probability: float = Field(
        default=0.75, ge=0, le=1, description="Share of parcels with threats (the rest are clean)."
    )
    concealment_probability: float = Field(default=0.35, ge=0, le=1)
    classes: tuple[str, ...] = Field(default=CLASS_NAMES, min_length=1, description="Threat classes to draw from.")
    clutter_density: Range = (0.6, 1.6)
    clutter_emphasis: dict[str, float] = Field(
        default_factory=dict,
        description="Benign kind -> multiplier of its frequency (hard negatives: food, bottle, can, cosmetics, ...).",
    )
    threat_emphasis: dict[str, float] = Field(
        default_factory=dict,
        description="Threat class -> multiplier of its frequency (classes the model finds hardest: lighter, ...).",
    )
    palettes: tuple[str, ...] = Field(default=("standard",), min_length=1, description="Palette names, or 'random'.")
    palette_jitter: float = Field(default=0.0, ge=0, le=2)
    scanner: ScannerRecipe = Field(default_factory=ScannerRecipe)
    crop_margin_px: int = Field(default=16, ge=0, le=256)
    png_compression: int = Field(default=1, ge=0, le=9)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CLASS_NAMES]
        if unknown:
            raise ValueError(f"unknown class(es) {unknown}; the taxonomy has {', '.join(CLASS_NAMES)}")
        return value

    @field_validator("clutter_emphasis")
    @classmethod
    def _known_clutter(cls, value: dict[str, float]) -> dict[str, float]:
        return _checked_emphasis("clutter_emphasis", value, tuple(CLUTTER), "clutter kind(s)")

    @field_validator("threat_emphasis")
    @classmethod
    def _known_threats(cls, value: dict[str, float]) -> dict[str, float]:
        return _checked_emphasis("threat_emphasis", value, CLASS_NAMES, "threat class(es)")

    @field_validator("palettes")
    @classmethod
    def _known_palettes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p != "random" and p not in PALETTES]
        if unknown:
            raise ValueError(f"unknown palette(s) {unknown}; known: {', '.join(PALETTES)} or 'random'")
        return value

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        _check_range(self.clutter_density)
        return self


def load_recipe(path: Path | str) -> Recipe:
    source = Path(path)
    try:
        data = load_yaml(source.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"recipe {source} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {source} is not valid YAML: {e}") from e
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"recipe {source}: {problems}") from e


@dataclass(frozen=True, slots=True)
class SynthParcel:
    """Everything written for one parcel."""

    parcel_id: str
    parcel: SimulatedParcel
    calibration: Calibration
    params: ScannerParams
    meta: dict[str, Any]
    png: bytes
    label: str


def _palette_for(recipe: Recipe, rng: np.random.Generator) -> Palette:
    name = recipe.palettes[int(rng.integers(len(recipe.palettes)))]
    if name == "random":
        return random_palette(rng, jitter=max(recipe.palette_jitter, 1.0))
    base = PALETTES[name]
    return random_palette_from(base, rng, recipe.palette_jitter) if recipe.palette_jitter > 0 else base


def random_palette_from(base: Palette, rng: np.random.Generator, jitter: float) -> Palette:
    """Jitter a named palette (same rules as :func:`random_palette`)."""
    jittered = random_palette(rng, jitter)
    return jittered.replace(name=f"{base.name}~") if jitter > 0 else base


def synth_one(recipe: Recipe, seed: int, index: int) -> SynthParcel:
    """Simulate and render parcel ``index`` of a recipe (a pure function of its arguments)."""
    rng = np.random.default_rng([seed, recipe.seed_offset, index])
    params = recipe.scanner.randomisation().draw(recipe.scanner.base(), rng)
    params = params.replace(scanner_id=f"{recipe.scanner.scanner_id}-{int(rng.integers(1 << 16)):04x}")
    sim = ParcelSimulator(params, rng)
    calibration = sim.calibration(n_lines=64)
    parcel = sim.simulate(
        recipe.threat_probability,
        threat_classes=recipe.classes,
        concealment_probability=recipe.concealment_probability,
        clutter_density=recipe.clutter_density,
        clutter_emphasis=recipe.clutter_emphasis or None,
        threat_emphasis=recipe.threat_emphasis or None,
    )
    palette = _palette_for(recipe, rng)
    lut = MaterialLut.for_spectrum(params)
    rendered = render(calibrate(parcel.high, parcel.low, calibration), lut, palette)
    box = content_box(rendered.material, recipe.crop_margin_px)
    if box is None:
        box = (0, 0, rendered.shape_hw[1], rendered.shape_hw[0])
    x0, y0, x1, y1 = box
    crop = rendered.rgb[y0:y1, x0:x1]
    ok, png = cv2.imencode(
        ".png", np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, recipe.png_compression]
    )
    if not ok:
        raise RuntimeError("PNG encoding failed")
    w, h = x1 - x0, y1 - y0
    lines = []
    objects = []
    for obj in parcel.threats:
        bx0, by0, bx1, by1 = obj.box_xyxy
        cx0, cy0 = max(bx0, x0) - x0, max(by0, y0) - y0
        cx1, cy1 = min(bx1, x1) - x0, min(by1, y1) - y0
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        lines.append(
            f"{obj.class_id} {(cx0 + cx1) / 2 / w:.6f} {(cy0 + cy1) / 2 / h:.6f} {(cx1 - cx0) / w:.6f} {(cy1 - cy0) / h:.6f}"
        )
        objects.append(
            {
                "class": obj.kind,
                "class_id": obj.class_id,
                "box_xyxy": list(obj.box_xyxy),
                "concealment": obj.concealment,
                "materials": list(obj.materials),
                "mass_g": round(obj.mass_g, 1),
            }
        )
    parcel_id = f"{recipe.name}-{seed}-{index:06d}"
    meta: dict[str, Any] = {
        "id": parcel_id,
        "split": recipe.split,
        "recipe": recipe.name,
        "seed": seed,
        "index": index,
        "container": parcel.container,
        "objects": objects,
        "clutter": [
            {"kind": c.kind, "box_xyxy": list(c.box_xyxy), "mass_g": round(c.mass_g, 1)} for c in parcel.clutter
        ],
        "declared_contents": list(parcel.declared_contents),
        "mass_g": round(parcel.mass_g, 1),
        "xray_mass_estimate_g": round(estimate_mass_g(rendered, lut, params), 1),
        "crop_xyxy": [x0, y0, x1, y1],
        "raw_shape": list(parcel.high.shape),
        "parcel_box_xyxy": list(parcel.parcel_box_xyxy),
        "palette": _palette_meta(palette),
        "scanner": params.to_meta(),
    }
    label = "\n".join(lines) + ("\n" if lines else "")
    return SynthParcel(parcel_id, parcel, calibration, params, meta, png.tobytes(), label)


def _palette_meta(palette: Palette) -> dict[str, Any]:
    return {
        "name": palette.name,
        "hues_deg": [round(x, 2) for x in palette.hues_deg],
        "saturation": [round(x, 3) for x in palette.saturation],
        "gamma": round(palette.gamma, 3),
    }


def write_dataset(
    out_dir: Path | str,
    count: int,
    seed: int,
    recipe: Recipe,
    split: str | None = None,
    progress: bool = True,
    workers: int = 1,
) -> list[str]:
    """Write ``count`` parcels and ``data.yaml`` under ``out_dir`` (see module docstring)."""
    from tqdm import tqdm

    if count < 0:
        raise ValueError("count must be >= 0")
    if split:
        recipe = recipe.model_copy(update={"split": split})
    out = Path(out_dir)
    for sub in ("images", "labels", "raw", "meta"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    bar = tqdm(total=count, desc=f"synth {recipe.name}", unit="parcel", disable=not progress)
    tasks = [(recipe, seed, i) for i in range(count)]
    if workers > 1 and count > 1:
        import multiprocessing
        import os

        # spawn, not fork: forking a process whose BLAS/OpenCV threads hold locks can deadlock the child;
        # each worker runs single-threaded (the environment is inherited at spawn)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            for item in pool.imap(_synth_task, tasks, chunksize=1):
                ids.append(_write_parcel(out, item))
                bar.update(1)
    else:
        # single-threaded BLAS as in the workers: multi-threaded sgemm rounds differently, and the files
        # must not depend on the worker count
        with threadpool_limits(limits=1, user_api="blas"):
            for task in tasks:
                ids.append(_write_parcel(out, _synth_task(task)))
                bar.update(1)
    bar.close()
    write_data_yaml(out)
    return ids


def _init_worker() -> None:
    cv2.setNumThreads(1)
    threadpool_limits(limits=1, user_api="blas")


def _synth_task(task: tuple[Recipe, int, int]) -> SynthParcel:
    return synth_one(*task)


def _write_parcel(out: Path, item: SynthParcel) -> str:
    pid = item.parcel_id
    (out / "images" / f"{pid}.png").write_bytes(item.png)
    (out / "labels" / f"{pid}.txt").write_text(item.label, encoding="utf-8")
    (out / "meta" / f"{pid}.json").write_text(json.dumps(item.meta, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    write_raw_scan(
        out / "raw" / f"{pid}.npz",
        item.parcel.high,
        item.parcel.low,
        item.calibration,
        raw_meta(item.params, parcel_id=pid),
    )
    return pid


def write_data_yaml(out_dir: Path) -> None:
    """ultralytics ``data.yaml``: ``path`` is this directory; train and val both point at ``images``."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES))
    text = (
        "# written by smartscreen synth; class ids are smartscreen.domain.taxonomy.CLASS_NAMES\n"
        f"path: {out_dir.resolve()}\n"
        "train: images\n"
        "val: images\n"
        f"nc: {len(CLASS_NAMES)}\n"
        f"names:\n{names}\n"
    )
    (out_dir / "data.yaml").write_text(text, encoding="utf-8")
