"""Analytic shapes rasterised to areal-density maps (g/cm^2) per material.

Objects are described in their own millimetre frame ``(u, v)`` as a list of primitives: plates
(polygon, uniform thickness), rods (lying cylinders or tubes, exact chord profile, optionally
filled), discs (standing cylinders seen from above: floor plus edge-on wall ring), ellipsoids,
strokes (wires and rings along a polyline, round profile) and textiles (polygon with folded,
noisy thickness). A :class:`Pose` places the object in the parcel plane; a :class:`Canvas`
converts millimetres to scan pixels (rows = detector lines along the belt, columns = channels
across it, each with its own pitch) and accumulates areal density per material.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.imaging.materials import MATERIALS

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Pose:
    """Placement of an object frame in the parcel plane: centre (mm), rotation (rad), uniform scale."""

    row_mm: float
    col_mm: float
    angle_rad: float = 0.0
    scale: float = 1.0

    def to_plane(self, uv: F64) -> F64:
        """``(N, 2)`` local ``(u, v)`` mm -> ``(N, 2)`` plane ``(row_mm, col_mm)``."""
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        u = uv[:, 0] * self.scale
        v = uv[:, 1] * self.scale
        return np.stack([self.row_mm + u * c - v * s, self.col_mm + u * s + v * c], axis=1)

    def to_local(self, row_mm: F64, col_mm: F64) -> tuple[F64, F64]:
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        dr = (row_mm - self.row_mm) / self.scale
        dc = (col_mm - self.col_mm) / self.scale
        return dr * c + dc * s, -dr * s + dc * c


@dataclass(frozen=True, slots=True)
class Patch:
    """Areal density (g/cm^2) of one material over a pixel window of the canvas."""

    material: str
    row0: int
    col0: int
    areal: F32

    @property
    def rows(self) -> slice:
        return slice(self.row0, self.row0 + self.areal.shape[0])

    @property
    def cols(self) -> slice:
        return slice(self.col0, self.col0 + self.areal.shape[1])


class Canvas:
    """Areal-density maps per material over a ``(rows, cols)`` pixel grid.

    Args:
        shape_px: ``(rows, cols)``.
        pixel_mm: object-plane pixel size ``(along the belt, across the belt)``.
    """

    def __init__(self, shape_px: tuple[int, int], pixel_mm: tuple[float, float]) -> None:
        self.shape = shape_px
        self.pixel_mm = pixel_mm
        self.maps: dict[str, F32] = {}

    def to_px(self, plane: F64) -> F64:
        """Plane ``(row_mm, col_mm)`` -> pixel ``(x=col, y=row)`` for OpenCV drawing."""
        return np.stack([plane[:, 1] / self.pixel_mm[1], plane[:, 0] / self.pixel_mm[0]], axis=1)

    def window(self, plane: F64, pad_px: int = 2) -> tuple[int, int, int, int] | None:
        """Pixel window ``(r0, r1, c0, c1)`` covering plane points, clipped to the canvas, or None if outside."""
        px = self.to_px(plane)
        c0 = max(0, math.floor(px[:, 0].min()) - pad_px)
        c1 = min(self.shape[1], math.ceil(px[:, 0].max()) + pad_px + 1)
        r0 = max(0, math.floor(px[:, 1].min()) - pad_px)
        r1 = min(self.shape[0], math.ceil(px[:, 1].max()) + pad_px + 1)
        if r1 <= r0 or c1 <= c0:
            return None
        return r0, r1, c0, c1

    def polygon_mask(self, plane: F64) -> tuple[tuple[int, int, int, int], npt.NDArray[np.uint8]] | None:
        """Anti-aliased 0..255 mask of a plane polygon inside its pixel window, or None if off the canvas."""
        win = self.window(plane)
        if win is None:
            return None
        r0, r1, c0, c1 = win
        px = self.to_px(plane) - np.array([c0, r0], dtype=np.float64)
        mask = np.zeros((r1 - r0, c1 - c0), dtype=np.uint8)
        cv2.fillPoly(mask, [np.rint(px * 16).astype(np.int32).reshape(-1, 1, 2)], 255, lineType=cv2.LINE_AA, shift=4)
        return win, mask

    def pixel_centres_mm(self, r0: int, r1: int, c0: int, c1: int) -> tuple[F64, F64]:
        rows = (np.arange(r0, r1, dtype=np.float64) + 0.5) * self.pixel_mm[0]
        cols = (np.arange(c0, c1, dtype=np.float64) + 0.5) * self.pixel_mm[1]
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return rr, cc

    def add(self, patch: Patch) -> None:
        target = self.maps.get(patch.material)
        if target is None:
            target = np.zeros(self.shape, dtype=np.float32)
            self.maps[patch.material] = target
        target[patch.rows, patch.cols] += patch.areal

    def add_all(self, patches: Sequence[Patch]) -> None:
        for p in patches:
            self.add(p)

    def total_areal(self) -> F32:
        out = np.zeros(self.shape, dtype=np.float32)
        for m in self.maps.values():
            out += m
        return out


def _areal(material: str, thickness_mm: F64 | float, density_scale: float) -> F64:
    rho = MATERIALS[material].density_g_cm3 * density_scale
    return np.asarray(thickness_mm, dtype=np.float64) * 0.1 * rho


class Primitive:
    """Base class: something that rasterises into patches for a pose on a canvas."""

    material: str
    density_scale: float

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        raise NotImplementedError

    def outline_uv(self) -> F64:
        """Local points bounding the primitive (for placement and windows)."""
        raise NotImplementedError


def _patch(material: str, window: tuple[int, int, int, int], areal: F64) -> Patch | None:
    if not np.any(areal > 0):
        return None
    return Patch(material, window[0], window[2], areal.astype(np.float32))


@dataclass(frozen=True)
class Plate(Primitive):
    """Polygon of uniform thickness (anti-aliased edges)."""

    material: str
    polygon_uv: tuple[tuple[float, float], ...]
    thickness_mm: float
    density_scale: float = 1.0

    def outline_uv(self) -> F64:
        return np.asarray(self.polygon_uv, dtype=np.float64)

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        drawn = canvas.polygon_mask(pose.to_plane(self.outline_uv()))
        if drawn is None:
            return []
        win, mask = drawn
        areal = mask.astype(np.float64) * (1.0 / 255.0) * _areal(self.material, self.thickness_mm, self.density_scale)
        p = _patch(self.material, win, areal)
        return [p] if p else []


def _segment_distance(u: F64, v: F64, p0: tuple[float, float], p1: tuple[float, float]) -> tuple[F64, F64]:
    """Distance to the segment's axis and the axial coordinate beyond the ends (0 inside)."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    length = math.hypot(du, dv) or 1e-9
    tu, tv = du / length, dv / length
    a = (u - p0[0]) * tu + (v - p0[1]) * tv
    d = np.abs(-(u - p0[0]) * tv + (v - p0[1]) * tu)
    beyond = np.maximum(np.maximum(-a, a - length), 0.0)
    return d, beyond


def _chord(radius: float, d: F64) -> F64:
    return 2.0 * np.sqrt(np.maximum(radius * radius - d * d, 0.0))


@dataclass(frozen=True)
class Rod(Primitive):
    """A cylinder or tube lying between two points; ``fill`` fills the bore (bottle contents, cell core)."""

    material: str
    p0: tuple[float, float]
    p1: tuple[float, float]
    radius_mm: float
    wall_mm: float | None = None  # None: solid
    fill: str | None = None
    fill_fraction: float = 1.0  # of the bore diameter (liquid level seen from above is still a full chord)
    density_scale: float = 1.0
    rounded_ends: bool = False

    def outline_uv(self) -> F64:
        r = self.radius_mm
        (u0, v0), (u1, v1) = self.p0, self.p1
        return np.array(
            [
                [min(u0, u1) - r, min(v0, v1) - r],
                [max(u0, u1) + r, max(v0, v1) + r],
                [min(u0, u1) - r, max(v0, v1) + r],
                [max(u0, u1) + r, min(v0, v1) - r],
            ]
        )

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        win = canvas.window(pose.to_plane(self.outline_uv()))
        if win is None:
            return []
        rr, cc = canvas.pixel_centres_mm(*win)
        u, v = pose.to_local(rr, cc)
        d, beyond = _segment_distance(u, v, self.p0, self.p1)
        if self.rounded_ends:
            d = np.hypot(d, beyond)
            inside = np.ones_like(d)
        else:
            pix = min(canvas.pixel_mm) / pose.scale
            inside = np.clip(1.0 - beyond / pix, 0.0, 1.0)
        r = self.radius_mm
        outer = _chord(r, d)
        patches: list[Patch] = []
        if self.wall_mm is None:
            p = _patch(self.material, win, _areal(self.material, outer * inside * pose.scale, self.density_scale))
            if p:
                patches.append(p)
            return patches
        inner_r = max(r - self.wall_mm, 0.0)
        bore = _chord(inner_r, d)
        wall = (outer - bore) * inside
        if not self.rounded_ends:
            # the closed ends are discs seen edge-on: a band one wall thick (spread over >= 1 pixel) at each end
            (u0, v0), (u1, v1) = self.p0, self.p1
            length = math.hypot(u1 - u0, v1 - v0) or 1e-9
            axial = ((u - u0) * (u1 - u0) + (v - v0) * (v1 - v0)) / length
            from_end = np.minimum(axial, length - axial)
            band = max(self.wall_mm, pix)
            wall = wall + np.where((from_end >= 0) & (from_end < band), outer * (self.wall_mm / band), 0.0)
        p = _patch(self.material, win, _areal(self.material, wall * pose.scale, self.density_scale))
        if p:
            patches.append(p)
        if self.fill:
            fill = _chord(inner_r * self.fill_fraction, d) * inside
            p = _patch(self.fill, win, _areal(self.fill, fill * pose.scale, 1.0))
            if p:
                patches.append(p)
        return patches


@dataclass(frozen=True)
class Disc(Primitive):
    """A standing cylinder seen from above: floor/lid of ``thickness_mm`` plus an edge-on wall ring."""

    material: str
    centre: tuple[float, float]
    radius_mm: float
    thickness_mm: float
    wall_height_mm: float = 0.0
    wall_mm: float = 0.0
    fill: str | None = None
    fill_height_mm: float = 0.0
    density_scale: float = 1.0

    def outline_uv(self) -> F64:
        r = self.radius_mm
        u, v = self.centre
        return np.array([[u - r, v - r], [u + r, v + r], [u - r, v + r], [u + r, v - r]])

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        win = canvas.window(pose.to_plane(self.outline_uv()))
        if win is None:
            return []
        rr, cc = canvas.pixel_centres_mm(*win)
        u, v = pose.to_local(rr, cc)
        rho = np.hypot(u - self.centre[0], v - self.centre[1])
        pix = min(canvas.pixel_mm) / pose.scale
        cover = np.clip((self.radius_mm - rho) / pix + 0.5, 0.0, 1.0)
        thickness = self.thickness_mm * cover
        if self.wall_mm > 0 and self.wall_height_mm > 0:
            ring = np.clip(
                1.0 - np.abs(rho - (self.radius_mm - self.wall_mm / 2)) / max(self.wall_mm / 2 + pix / 2, 1e-6),
                0.0,
                1.0,
            )
            # the wall spreads over at least one pixel: keep the areal mass right
            thickness = thickness + ring * self.wall_height_mm * min(1.0, self.wall_mm / pix)
        patches: list[Patch] = []
        p = _patch(self.material, win, _areal(self.material, thickness * pose.scale, self.density_scale))
        if p:
            patches.append(p)
        if self.fill and self.fill_height_mm > 0:
            inner = np.clip((self.radius_mm - self.wall_mm - rho) / pix + 0.5, 0.0, 1.0)
            p = _patch(self.fill, win, _areal(self.fill, inner * self.fill_height_mm * pose.scale, 1.0))
            if p:
                patches.append(p)
        return patches


@dataclass(frozen=True)
class Ellipsoid(Primitive):
    """An ellipsoid with semi-axes ``a`` (u), ``b`` (v) and peak thickness ``thickness_mm`` at the centre."""

    material: str
    centre: tuple[float, float]
    a_mm: float
    b_mm: float
    thickness_mm: float
    density_scale: float = 1.0

    def outline_uv(self) -> F64:
        u, v = self.centre
        return np.array(
            [
                [u - self.a_mm, v - self.b_mm],
                [u + self.a_mm, v + self.b_mm],
                [u - self.a_mm, v + self.b_mm],
                [u + self.a_mm, v - self.b_mm],
            ]
        )

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        win = canvas.window(pose.to_plane(self.outline_uv()))
        if win is None:
            return []
        rr, cc = canvas.pixel_centres_mm(*win)
        u, v = pose.to_local(rr, cc)
        q = ((u - self.centre[0]) / self.a_mm) ** 2 + ((v - self.centre[1]) / self.b_mm) ** 2
        t = self.thickness_mm * np.sqrt(np.maximum(1.0 - q, 0.0))
        p = _patch(self.material, win, _areal(self.material, t * pose.scale, self.density_scale))
        return [p] if p else []


@dataclass(frozen=True)
class Stroke(Primitive):
    """A round wire or bar of ``width_mm`` diameter along a polyline (closed for rings and chains)."""

    material: str
    points_uv: tuple[tuple[float, float], ...]
    width_mm: float
    closed: bool = False
    thickness_mm: float | None = None  # None: round profile of the width; else flat bar of this thickness
    density_scale: float = 1.0

    def outline_uv(self) -> F64:
        pts = np.asarray(self.points_uv, dtype=np.float64)
        r = self.width_mm / 2
        lo, hi = pts.min(axis=0) - r, pts.max(axis=0) + r
        return np.array([[lo[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]], [hi[0], lo[1]]])

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        win = canvas.window(pose.to_plane(self.outline_uv()), pad_px=3)
        if win is None:
            return []
        rr, cc = canvas.pixel_centres_mm(*win)
        u, v = pose.to_local(rr, cc)
        pts = list(self.points_uv)
        if self.closed:
            pts.append(pts[0])
        d = np.full(u.shape, np.inf)
        r = self.width_mm / 2
        r0, _, c0, _ = win
        for a, b in itertools.pairwise(pts):
            # only the pixels near this segment
            lo_u, hi_u = min(a[0], b[0]) - r, max(a[0], b[0]) + r
            lo_v, hi_v = min(a[1], b[1]) - r, max(a[1], b[1]) + r
            corners = np.array([[lo_u, lo_v], [hi_u, hi_v], [lo_u, hi_v], [hi_u, lo_v]])
            sub = canvas.window(pose.to_plane(corners), pad_px=2)
            if sub is None:
                continue
            rs = slice(sub[0] - r0, sub[1] - r0)
            cs = slice(sub[2] - c0, sub[3] - c0)
            da, beyond = _segment_distance(u[rs, cs], v[rs, cs], a, b)
            np.minimum(d[rs, cs], np.hypot(da, beyond), out=d[rs, cs])
        pix = min(canvas.pixel_mm) / pose.scale
        if self.thickness_mm is None:
            # round wire; thinner than a pixel it spreads its mass over the pixel (partial volume)
            r_eff = max(r, pix / 2)
            t = _chord(r_eff, d) * (r / r_eff) ** 2
        else:
            t = self.thickness_mm * np.clip((r - d) / pix + 0.5, 0.0, 1.0) * min(1.0, self.width_mm / pix)
        p = _patch(self.material, win, _areal(self.material, t * pose.scale, self.density_scale))
        return [p] if p else []


@dataclass(frozen=True)
class Textile(Primitive):
    """Folded cloth, padding or paper stack: a polygon with low-frequency, fold-like thickness variation."""

    material: str
    polygon_uv: tuple[tuple[float, float], ...]
    mean_thickness_mm: float
    variation: float = 0.6
    density_scale: float = 1.0
    seed: int = 0
    folds: int = 3

    def outline_uv(self) -> F64:
        return np.asarray(self.polygon_uv, dtype=np.float64)

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        drawn = canvas.polygon_mask(pose.to_plane(self.outline_uv()))
        if drawn is None:
            return []
        win, mask = drawn
        r0, r1, c0, c1 = win
        local = np.random.default_rng(self.seed)
        h, w = r1 - r0, c1 - c0
        # texture and fold lines at quarter resolution, then upsampled (they are smooth anyway)
        hs, ws = max(2, h // 4), max(2, w // 4)
        coarse = local.random((6, 6)).astype(np.float32)
        small = cv2.resize(coarse, (ws, hs), interpolation=cv2.INTER_CUBIC).astype(np.float64)
        rr, cc = np.mgrid[0:hs, 0:ws].astype(np.float64)
        for _ in range(self.folds):
            ang = local.uniform(0, math.pi)
            off = local.uniform(0, max(hs, ws))
            width = local.uniform(0.5, 2.0)
            dist = np.abs(rr * math.cos(ang) + cc * math.sin(ang) - off)
            small += 0.8 * np.exp(-((dist / width) ** 2))
        field_ = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        field_ = 1.0 + self.variation * (field_ - field_.mean()) / (field_.std() + 1e-6) * 0.5
        thickness = np.clip(field_, 0.15, None) * self.mean_thickness_mm * (mask / 255.0)
        p = _patch(self.material, win, _areal(self.material, thickness, self.density_scale))
        return [p] if p else []


@dataclass
class ObjectModel:
    """An object in its local frame: primitives drawn in order, with a label and descriptive materials."""

    kind: str  # threat class name or clutter kind
    primitives: list[Primitive] = field(default_factory=list)
    is_threat: bool = False

    def outline_uv(self) -> F64:
        return np.concatenate([p.outline_uv() for p in self.primitives], axis=0)

    def extent_mm(self) -> tuple[float, float]:
        pts = self.outline_uv()
        span = pts.max(axis=0) - pts.min(axis=0)
        return float(span[0]), float(span[1])

    def centre_uv(self) -> tuple[float, float]:
        pts = self.outline_uv()
        c = (pts.max(axis=0) + pts.min(axis=0)) / 2
        return float(c[0]), float(c[1])

    def materials(self) -> list[str]:
        seen: list[str] = []
        for p in self.primitives:
            for m in (p.material, getattr(p, "fill", None)):
                if m and m not in seen:
                    seen.append(m)
        return seen

    def rasterise(self, canvas: Canvas, pose: Pose, rng: np.random.Generator) -> list[Patch]:
        patches: list[Patch] = []
        for p in self.primitives:
            patches.extend(p.rasterise(canvas, pose, rng))
        return patches


def ellipse_points(
    cu: float, cv: float, a: float, b: float, n: int = 32, start: float = 0.0, stop: float = 2 * math.pi
) -> tuple[tuple[float, float], ...]:
    t = np.linspace(start, stop, n, endpoint=not math.isclose(stop - start, 2 * math.pi))
    return tuple((float(cu + a * math.cos(x)), float(cv + b * math.sin(x))) for x in t)


def rounded_rect(length: float, width: float, radius: float, n: int = 6) -> tuple[tuple[float, float], ...]:
    """Rounded rectangle centred at the origin, ``length`` along u."""
    r = min(radius, length / 2, width / 2)
    hu, hv = length / 2 - r, width / 2 - r
    pts: list[tuple[float, float]] = []
    for cu, cv, a0 in ((hu, hv, 0.0), (-hu, hv, 0.5 * math.pi), (-hu, -hv, math.pi), (hu, -hv, 1.5 * math.pi)):
        for k in range(n + 1):
            t = a0 + k * (0.5 * math.pi) / n
            pts.append((cu + r * math.cos(t), cv + r * math.sin(t)))
    return tuple(pts)


def blob(
    rng: np.random.Generator, length: float, width: float, roughness: float = 0.15, n: int = 24
) -> tuple[tuple[float, float], ...]:
    """A smooth random closed outline of about ``length`` x ``width``."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    radius = np.ones(n)
    for k in (2, 3, 4):
        radius += roughness / k * rng.standard_normal() * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    radius = np.clip(radius, 0.6, 1.3)
    # squarish bias for cloth piles and bags
    sq = np.abs(np.cos(t)) ** 0.6 * np.sign(np.cos(t)), np.abs(np.sin(t)) ** 0.6 * np.sign(np.sin(t))
    return tuple(
        (float(length / 2 * r * a), float(width / 2 * r * b)) for r, a, b in zip(radius, sq[0], sq[1], strict=True)
    )
