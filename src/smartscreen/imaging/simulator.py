"""Parcel simulator: cartons, soft bags and mailers with clutter and threats, through the forward model.

Scenes are built in material-thickness space (areal density per material, reference doc 10.2,
recipe A): threats are rasterised into the same maps as the clutter *before* the forward model,
never composited into rendered images. Ground-truth boxes come from each threat's own maps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.taxonomy import CLASS_NAMES, class_id
from smartscreen.imaging.calibration import Calibration
from smartscreen.imaging.forward import Detector, ExpectedSignal, SpectralForward
from smartscreen.imaging.materials import MATERIALS, mass_attenuation
from smartscreen.imaging.objects import electronics, make_threat, random_clutter
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.imaging.shapes import Canvas, ObjectModel, Patch, Plate, Pose, Stroke, Textile, blob, rounded_rect

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]

CONCEALMENTS = ("none", "under_metal_plate", "among_electronics", "dense_clutter")
CONTAINERS = ("carton", "soft_bag", "mailer")
VISIBLE_A_HIGH = 0.02  # a threat pixel counts for its box when it alone attenuates HE by at least this


@dataclass(frozen=True, slots=True)
class PlacedObject:
    """One object of a simulated parcel.

    Attributes:
        kind: taxonomy class name for threats, clutter kind otherwise.
        class_id: taxonomy id for threats, None for clutter.
        box_xyxy: ``(x0, y0, x1, y1)`` in raw-scan pixels (x = channel, y = line), exclusive max.
        concealment: one of :data:`CONCEALMENTS`.
        materials: material names the object is made of.
        mass_g: the object's mass.
    """

    kind: str
    class_id: int | None
    box_xyxy: tuple[int, int, int, int]
    concealment: str
    materials: tuple[str, ...]
    mass_g: float


@dataclass(frozen=True, slots=True)
class SimulatedParcel:
    """Raw output of one simulated parcel and its ground truth.

    ``high``/``low`` are uint16 ``(n_lines, channels)`` over the full scanner width, with air lines
    before and after the parcel.
    """

    high: U16
    low: U16
    params: ScannerParams
    threats: tuple[PlacedObject, ...]
    clutter: tuple[PlacedObject, ...]
    container: str
    mass_g: float
    parcel_box_xyxy: tuple[int, int, int, int]
    areal_g_cm2: dict[str, F32] = field(repr=False, default_factory=dict)
    areal_origin_yx: tuple[int, int] = (0, 0)
    threat_patches: tuple[tuple[Patch, ...], ...] = field(repr=False, default=())
    """Per threat (same order as ``threats``): its areal-density patches in raw-scan pixel coordinates."""

    @property
    def declared_contents(self) -> tuple[str, ...]:
        """What an honest sender would declare: the benign content kinds, most frequent first."""
        counts: dict[str, int] = {}
        for c in self.clutter:
            if c.kind not in ("padding",):
                counts[c.kind] = counts.get(c.kind, 0) + 1
        return tuple(sorted(counts, key=lambda k: (-counts[k], k)))


def _compose(parent: Pose, local: Pose) -> Pose:
    c, s = math.cos(parent.angle_rad), math.sin(parent.angle_rad)
    return Pose(
        row_mm=parent.row_mm + parent.scale * (local.row_mm * c - local.col_mm * s),
        col_mm=parent.col_mm + parent.scale * (local.row_mm * s + local.col_mm * c),
        angle_rad=parent.angle_rad + local.angle_rad,
        scale=parent.scale * local.scale,
    )


@lru_cache(maxsize=8)
def _a_high_coefficients_at(e_eff_kev: float) -> dict[str, float]:
    return {name: float(mass_attenuation(name, [e_eff_kev])[0]) for name in MATERIALS}


def _a_high_coefficients(params: ScannerParams) -> dict[str, float]:
    """Approximate HE mass attenuation per material (at the channel's ~85-90 keV effective energy)."""
    return _a_high_coefficients_at(88.0 if params.kvp >= 150 else 83.0)


class ParcelSimulator:
    """Simulates parcels as one scanner sees them.

    Args:
        params: the scanner.
        rng: all randomness (scene and detector noise) comes from here; the detector's fixed
            pattern is drawn once at construction.
    """

    def __init__(self, params: ScannerParams, rng: np.random.Generator) -> None:
        self.params = params
        self.rng = rng
        self.forward = SpectralForward(params)
        self.detector = Detector(params, rng)
        self._mu_h = _a_high_coefficients(params)

    # ------------------------------------------------------------ references

    def air_lines(self, n: int) -> tuple[U16, U16]:
        """``n`` raw lines of empty belt, beam on: ``(high, low)``."""
        return self.detector.air_lines(n, self.rng, self.forward)

    def dark_lines(self, n: int) -> tuple[U16, U16]:
        """``n`` raw lines with the X-rays off: ``(high, low)``."""
        return self.detector.dark_lines(n, self.rng)

    def calibration(self, n_lines: int = 128) -> Calibration:
        """Dark and air references recorded the way a scanner does between parcels."""
        dark_h, dark_l = self.dark_lines(n_lines)
        air_h, air_l = self.air_lines(n_lines)
        return Calibration.from_reference_lines(dark_h, dark_l, air_h, air_l, self.params.full_scale_adu)

    # ------------------------------------------------------------ scene

    def simulate(
        self,
        threat_probability: float = 0.5,
        *,
        threat_classes: Sequence[str] | None = None,
        concealment_probability: float = 0.35,
        clutter_density: tuple[float, float] = (0.6, 1.6),
        clutter_emphasis: Mapping[str, float] | None = None,
        threat_emphasis: Mapping[str, float] | None = None,
    ) -> SimulatedParcel:
        """One parcel: a container with clutter and, with ``threat_probability``, 1-3 threats.

        ``clutter_emphasis`` multiplies the frequency of benign kinds (see :func:`random_clutter`);
        ``threat_emphasis`` the frequency of threat classes (default: all ``threat_classes`` equally often).
        """
        rng = self.rng
        classes = tuple(threat_classes) if threat_classes else CLASS_NAMES
        for name in classes:
            class_id(name)
        class_p: npt.NDArray[np.float64] | None = None
        if threat_emphasis:
            weights = np.array([threat_emphasis.get(name, 1.0) for name in classes], dtype=np.float64)
            if not weights.sum() > 0:
                raise ValueError("threat_emphasis leaves no threat class with a positive frequency")
            class_p = weights / weights.sum()
        threats: list[ObjectModel] = []
        if rng.random() < threat_probability:
            n = int(rng.choice([1, 2, 3], p=[0.7, 0.22, 0.08]))
            for _ in range(n):
                pick = int(rng.integers(len(classes))) if class_p is None else int(rng.choice(len(classes), p=class_p))
                name = classes[pick]
                if name == "bullet":
                    threats.extend(make_threat("bullet", rng) for _ in range(int(rng.integers(1, 6))))
                else:
                    threats.append(make_threat(name, rng))
        container = CONTAINERS[int(rng.choice(3, p=[0.6, 0.28, 0.12]))]
        longest = max((max(t.extent_mm()) for t in threats), default=0.0)
        width_limit = self.params.channels * self.params.object_pixel_mm[1] * 0.85
        dims = {"carton": ((220, 650), (160, 480), (100, 400)), "soft_bag": ((300, 600), (220, 420), (120, 300))}
        ranges = dims.get(container, ((200, 420), (150, 320), (30, 90)))
        length, width, height = (float(rng.uniform(lo, hi)) for lo, hi in ranges)
        length = max(length, min(longest * 1.05 + 40, 900.0))
        width = min(max(width, min(longest * 0.6, 500.0)), width_limit)
        angle = float(rng.normal(0, 0.25)) if rng.random() < 0.7 else float(rng.uniform(-math.pi / 2, math.pi / 2))
        # canvas big enough for the rotated parcel, with margin
        diag = math.hypot(length, width) + 60.0
        pix = self.params.object_pixel_mm
        canvas_rows = math.ceil(diag / pix[0])
        canvas_cols = min(math.ceil(diag / pix[1]), self.params.channels)
        canvas = Canvas((canvas_rows, canvas_cols), pix)
        centre = Pose(canvas_rows * pix[0] / 2, canvas_cols * pix[1] / 2, angle, 1.0)
        # keep the rotated parcel inside the channel range
        half_extent_cols = 0.5 * (abs(length * math.sin(angle)) + abs(width * math.cos(angle)))
        if 2 * half_extent_cols > canvas_cols * pix[1] - 20:
            shrink = (canvas_cols * pix[1] - 20) / (2 * half_extent_cols)
            length, width = length * shrink, width * shrink
        clutter_models: list[tuple[ObjectModel, Pose]] = []
        self._container(canvas, centre, container, length, width, height, rng, clutter_models)

        inner_l, inner_w = length - 30, width - 30
        n_clutter = int(np.clip(inner_l * inner_w / (120.0 * 120.0) * rng.uniform(*clutter_density), 2, 40))
        for _ in range(n_clutter):
            model = random_clutter(rng, clutter_emphasis)
            clutter_models.append((model, self._fit_pose(model, inner_l, inner_w, rng)))
        clutter_patches: list[list[Patch]] = []
        for model, local in clutter_models:
            patches = model.rasterise(canvas, _compose(centre, local), rng)
            canvas.add_all(patches)
            clutter_patches.append(patches)

        placed_threats: list[tuple[ObjectModel, list[Patch], str]] = []
        for model in threats:
            concealment = "none"
            if rng.random() < concealment_probability:
                concealment = CONCEALMENTS[1 + int(rng.integers(3))]
            local = self._fit_pose(model, inner_l, inner_w, rng, min_scale=0.85)
            if concealment == "dense_clutter":
                local = self._densest_pose(canvas, centre, local, inner_l, inner_w, model)
            pose = _compose(centre, local)
            patches = model.rasterise(canvas, pose, rng)
            canvas.add_all(patches)
            if concealment == "under_metal_plate":
                self._metal_plate(canvas, pose, model, rng)
            elif concealment in ("among_electronics", "dense_clutter"):
                # hide it among boards or under extra clutter placed around it, inside the parcel
                at = local.to_plane(np.array([model.centre_uv()]))[0]
                n_extra = int(rng.integers(1, 3)) if concealment == "among_electronics" else int(rng.integers(2, 4))
                for _ in range(n_extra):
                    extra = (
                        electronics(rng)
                        if concealment == "among_electronics"
                        else random_clutter(rng, clutter_emphasis)
                    )
                    extra_local = self._fit_pose(extra, inner_l, inner_w, rng, near=(float(at[0]), float(at[1])))
                    extra_patches = extra.rasterise(canvas, _compose(centre, extra_local), rng)
                    canvas.add_all(extra_patches)
                    clutter_models.append((extra, extra_local))
                    clutter_patches.append(extra_patches)
            placed_threats.append((model, patches, concealment))

        return self._expose(canvas, container, placed_threats, clutter_models, clutter_patches)

    def _fit_pose(
        self,
        model: ObjectModel,
        inner_l: float,
        inner_w: float,
        rng: np.random.Generator,
        min_scale: float = 0.5,
        near: tuple[float, float] | None = None,
    ) -> Pose:
        """A random pose for ``model`` inside the parcel interior (centred frame), scaled down if it must be.

        ``near``: put the object's centre within ~50 mm of this parcel-frame point (still inside the parcel).
        """
        ext_u, ext_v = model.extent_mm()
        cu, cv = model.centre_uv()
        for _ in range(12):
            angle = float(rng.uniform(-math.pi, math.pi))
            c, s = abs(math.cos(angle)), abs(math.sin(angle))
            span_r = ext_u * c + ext_v * s
            span_c = ext_u * s + ext_v * c
            scale = min(1.0, inner_l / max(span_r, 1e-6), inner_w / max(span_c, 1e-6))
            if scale >= min_scale or _ == 11:
                free_r = max(inner_l - span_r * scale, 0.0) / 2
                free_c = max(inner_w - span_c * scale, 0.0) / 2
                if near is None:
                    r = float(rng.uniform(-free_r, free_r))
                    col = float(rng.uniform(-free_c, free_c))
                else:
                    r = float(np.clip(near[0] + rng.uniform(-50, 50), -free_r, free_r))
                    col = float(np.clip(near[1] + rng.uniform(-50, 50), -free_c, free_c))
                # the model's own centre must land at (r, col)
                ca, sa = math.cos(angle), math.sin(angle)
                dr = scale * (cu * ca - cv * sa)
                dc = scale * (cu * sa + cv * ca)
                return Pose(r - dr, col - dc, angle, scale)
        raise AssertionError("unreachable")

    def _densest_pose(
        self, canvas: Canvas, centre: Pose, local: Pose, inner_l: float, inner_w: float, model: ObjectModel
    ) -> Pose:
        """Move a pose so the object sits over the densest clutter that keeps it inside the parcel."""
        total = canvas.total_areal()
        if not total.any():
            return local
        small = cv2.blur(total, (15, 15))
        r_idx, c_idx = np.unravel_index(int(np.argmax(small)), small.shape)
        r, c = int(r_idx), int(c_idx)
        pix = canvas.pixel_mm
        target_r = (r + 0.5) * pix[0] - centre.row_mm
        target_c = (c + 0.5) * pix[1] - centre.col_mm
        ca, sa = math.cos(-centre.angle_rad), math.sin(-centre.angle_rad)
        lr: float = target_r * ca - target_c * sa
        lc: float = target_r * sa + target_c * ca
        ext = max(model.extent_mm()) * local.scale / 2
        lr = float(np.clip(lr, -inner_l / 2 + ext * 0.5, inner_l / 2 - ext * 0.5))
        lc = float(np.clip(lc, -inner_w / 2 + ext * 0.5, inner_w / 2 - ext * 0.5))
        return Pose(lr, lc, local.angle_rad, local.scale)

    def _metal_plate(self, canvas: Canvas, pose: Pose, model: ObjectModel, rng: np.random.Generator) -> None:
        ext_u, ext_v = model.extent_mm()
        cu, cv = model.centre_uv()
        cover = rng.uniform(0.6, 1.3)
        mat = "steel" if rng.random() < 0.55 else "aluminium"
        thickness = rng.uniform(0.5, 2.0) if mat == "steel" else rng.uniform(1.5, 5.0)
        poly = tuple(
            (cu + u + rng.uniform(-0.2, 0.2) * ext_u, cv + v)
            for u, v in rounded_rect(ext_u * cover + 20, ext_v * 1.2 + 20, 4)
        )
        canvas.add_all(Plate(mat, poly, thickness).rasterise(canvas, pose, rng))

    def _container(
        self,
        canvas: Canvas,
        centre: Pose,
        container: str,
        length: float,
        width: float,
        height: float,
        rng: np.random.Generator,
        clutter: list[tuple[ObjectModel, Pose]],
    ) -> None:
        outline = rounded_rect(length, width, 4 if container == "carton" else 40)
        if container == "carton":
            board = rng.uniform(3.0, 7.0)  # corrugated board thickness (mm), ~0.13 g/cm^3 effective
            density = rng.uniform(0.07, 0.11)
            # top + bottom walls face-on, side walls edge-on (perspective spreads them over a band)
            canvas.add_all(Plate("cellulose", outline, 2 * board, density_scale=density).rasterise(canvas, centre, rng))
            band = rng.uniform(8.0, 30.0)  # walls bulge and lean: perspective spreads them
            canvas.add_all(
                Stroke(
                    "cellulose",
                    outline,
                    band,
                    closed=True,
                    thickness_mm=height * board / band,
                    density_scale=density * 0.6,
                ).rasterise(canvas, centre, rng)
            )
            if rng.random() < 0.8:  # packing tape
                tape = ((-length / 2, -25.0), (length / 2, -25.0), (length / 2, 25.0), (-length / 2, 25.0))
                canvas.add_all(Plate("polyethylene", tape, 0.1).rasterise(canvas, centre, rng))
            if rng.random() < 0.3:  # staples
                for k in range(int(rng.integers(2, 6))):
                    u = -length / 2 + (k + 1) * length / 6
                    canvas.add_all(
                        Stroke("steel", ((u, width / 2 - 3), (u + 10, width / 2 - 3)), 0.8).rasterise(
                            canvas, centre, rng
                        )
                    )
        elif container == "soft_bag":
            shape = blob(rng, length, width, 0.12)
            mat = "nylon" if rng.random() < 0.7 else "pet"
            canvas.add_all(
                Textile(
                    mat, shape, rng.uniform(2, 6), variation=0.5, density_scale=0.35, seed=int(rng.integers(1 << 30))
                ).rasterise(canvas, centre, rng)
            )
            canvas.add_all(
                Stroke(mat, shape, 10.0, closed=True, thickness_mm=height * 0.02).rasterise(canvas, centre, rng)
            )
            # zips, straps and buckles
            zip_path = tuple((u * 0.95, v * 0.95) for u, v in shape[: len(shape) // 2 + 1])
            canvas.add_all(
                Stroke("steel" if rng.random() < 0.6 else "polyethylene", zip_path, 5.0, thickness_mm=0.8).rasterise(
                    canvas, centre, rng
                )
            )
            for _ in range(int(rng.integers(1, 9))):  # zipper pulls: small steel tabs, as on every real bag
                u, v = zip_path[int(rng.integers(len(zip_path)))]
                a = float(rng.uniform(-math.pi, math.pi))
                tab = rounded_rect(float(rng.uniform(12, 30)), float(rng.uniform(5, 10)), 2)
                pull = ObjectModel("zipper_pull", [Plate("steel", tab, float(rng.uniform(0.8, 1.6)))])
                clutter.append((pull, Pose(float(u), float(v), a, 1.0)))
            for _ in range(int(rng.integers(0, 5))):
                u, v = rng.uniform(-length / 2, length / 2), rng.uniform(-width / 2, width / 2)
                buckle = ObjectModel(
                    "buckle",
                    [
                        Stroke(
                            str(rng.choice(["steel", "polyethylene", "aluminium"])),
                            tuple((u + a, v + b) for a, b in rounded_rect(rng.uniform(20, 45), rng.uniform(12, 30), 4)),
                            3.0,
                            closed=True,
                        )
                    ],
                )
                clutter.append((buckle, Pose(0.0, 0.0, 0.0, 1.0)))
        else:  # poly mailer or padded envelope
            shape = blob(rng, length, width, 0.05)
            canvas.add_all(
                Textile(
                    "polyethylene", shape, rng.uniform(0.1, 0.4), variation=0.3, seed=int(rng.integers(1 << 30))
                ).rasterise(canvas, centre, rng)
            )
            if rng.random() < 0.5:
                canvas.add_all(
                    Textile(
                        "polyethylene",
                        shape,
                        rng.uniform(4, 8),
                        variation=0.3,
                        density_scale=0.04,
                        seed=int(rng.integers(1 << 30)),
                    ).rasterise(canvas, centre, rng)
                )

    # ------------------------------------------------------------ exposure

    def _box(self, patches: Sequence[Patch], row_off: int, col_off: int) -> tuple[int, int, int, int] | None:
        r0 = c0 = 1 << 30
        r1 = c1 = -1
        for p in patches:
            visible = p.areal * np.float32(self._mu_h[p.material]) >= VISIBLE_A_HIGH
            if not visible.any():
                continue
            rows = np.flatnonzero(visible.any(axis=1))
            cols = np.flatnonzero(visible.any(axis=0))
            r0, r1 = min(r0, p.row0 + int(rows[0])), max(r1, p.row0 + int(rows[-1]) + 1)
            c0, c1 = min(c0, p.col0 + int(cols[0])), max(c1, p.col0 + int(cols[-1]) + 1)
        if r1 < 0:
            return None
        return (c0 + col_off, r0 + row_off, c1 + col_off, r1 + row_off)

    def _mass_g(self, patches: Sequence[Patch]) -> float:
        pix = self.params.object_pixel_mm
        area_cm2 = pix[0] * pix[1] * 0.01
        return float(sum(float(p.areal.sum()) for p in patches) * area_cm2)

    def _expose(
        self,
        canvas: Canvas,
        container: str,
        threats: list[tuple[ObjectModel, list[Patch], str]],
        clutter_models: list[tuple[ObjectModel, Pose]],
        clutter_patches: list[list[Patch]],
    ) -> SimulatedParcel:
        rng = self.rng
        params = self.params
        total = canvas.total_areal()
        occupied_rows = np.flatnonzero(total.any(axis=1))
        occupied_cols = np.flatnonzero(total.any(axis=0))
        r_lo, r_hi = int(occupied_rows[0]), int(occupied_rows[-1]) + 1
        c_lo, c_hi = int(occupied_cols[0]), int(occupied_cols[-1]) + 1
        lead_in, lead_out = int(rng.integers(16, 64)), int(rng.integers(16, 64))
        n_lines = lead_in + (r_hi - r_lo) + lead_out
        span = c_hi - c_lo
        col_start = int(rng.integers(0, max(params.channels - span, 0) + 1))
        row_off, col_off = lead_in - r_lo, col_start - c_lo
        maps = {name: m[r_lo:r_hi, c_lo:c_hi] for name, m in canvas.maps.items()}
        signal = self.forward.signal(maps)
        shape = (n_lines, params.channels)
        w = self.forward._weights
        full = ExpectedSignal(
            low=np.ones(shape, np.float32),
            high=np.ones(shape, np.float32),
            var_low=np.full(shape, float(w[:, 2].sum()), np.float32),
            var_high=np.full(shape, float(w[:, 3].sum()), np.float32),
        )
        rows = slice(lead_in, lead_in + (r_hi - r_lo))
        cols = slice(col_start, col_start + span)
        full.low[rows, cols] = signal.low
        full.high[rows, cols] = signal.high
        full.var_low[rows, cols] = signal.var_low
        full.var_high[rows, cols] = signal.var_high
        high, low = self.detector.expose(full, rng)

        placed_threats: list[PlacedObject] = []
        threat_patches: list[tuple[Patch, ...]] = []
        for model, patches, concealment in threats:
            box = self._box(patches, row_off, col_off)
            if box is None:
                continue
            threat_patches.append(
                tuple(Patch(p.material, p.row0 + row_off, p.col0 + col_off, p.areal) for p in patches)
            )
            placed_threats.append(
                PlacedObject(
                    model.kind, class_id(model.kind), box, concealment, tuple(model.materials()), self._mass_g(patches)
                )
            )
        placed_clutter: list[PlacedObject] = []
        for (model, _pose), patches in zip(clutter_models, clutter_patches, strict=True):
            box = self._box(patches, row_off, col_off)
            if box is None:
                continue
            placed_clutter.append(
                PlacedObject(model.kind, None, box, "none", tuple(model.materials()), self._mass_g(patches))
            )
        mass = float(
            sum(float(m.sum()) for m in maps.values()) * params.object_pixel_mm[0] * params.object_pixel_mm[1] * 0.01
        )
        return SimulatedParcel(
            high=high,
            low=low,
            params=params,
            threats=tuple(placed_threats),
            clutter=tuple(placed_clutter),
            container=container,
            mass_g=mass,
            parcel_box_xyxy=(col_start, lead_in, col_start + span, lead_in + (r_hi - r_lo)),
            areal_g_cm2=maps,
            areal_origin_yx=(lead_in, col_start),
            threat_patches=tuple(threat_patches),
        )
