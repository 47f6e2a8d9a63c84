"""Object library: the 15 threat classes and benign parcel clutter, as material-thickness models.

Every generator takes a numpy Generator and returns an :class:`ObjectModel` in its local
millimetre frame (u along the object's length, centred near the origin). Dimensions and
materials follow the reference ranges (dual-energy-physics.md section 9) and the look of real
scans: steel blades 1.5-3 mm, gun frames up to 30 mm of steel path, Li-ion cells as a steel can
around a dense core, bottles as a wall plus contents, cables as PVC with a copper core.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from smartscreen.imaging.shapes import (
    Disc,
    Ellipsoid,
    ObjectModel,
    Plate,
    Primitive,
    Rod,
    Stroke,
    Textile,
    blob,
    ellipse_points,
    rounded_rect,
)

Generator = Callable[[np.random.Generator], ObjectModel]

WOOD = 0.45  # density scale of cellulose for wood
FOAM = 0.06


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _choice(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _cell(length: float, radius: float, u0: float = 0.0, v0: float = 0.0, angle: float = 0.0) -> list[Primitive]:
    """A cylindrical Li-ion cell lying along u: steel can (0.25 mm) around a jelly-roll core, plus end caps."""
    du, dv = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    p0, p1 = (u0 - du, v0 - dv), (u0 + du, v0 + dv)
    return [
        Rod("steel", p0, p1, radius, wall_mm=0.25, fill="li_ion_core", fill_fraction=0.93),
        Rod("aluminium", (p1[0] - 0.06 * du, p1[1] - 0.06 * dv), p1, radius * 0.5),
    ]


# ---------------------------------------------------------------- threats


def _folding_or_utility_knife(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    if rng.random() < 0.5:  # folding knife, closed or open
        handle, hw = _u(rng, 85, 130), _u(rng, 18, 28)
        blade = handle * _u(rng, 0.8, 0.95)
        liner = _choice(rng, ("steel", "aluminium"))
        prims.append(Plate(liner, rounded_rect(handle, hw, 6), 1.2 if liner == "steel" else 2.5))
        prims.append(
            Plate(_choice(rng, ("nylon", "cellulose")), rounded_rect(handle, hw, 6), _u(rng, 6, 10), density_scale=0.8)
        )
        bw = hw * 0.75
        blade_poly: tuple[tuple[float, float], ...]
        if rng.random() < 0.5:  # closed: blade folded inside the handle
            blade_poly = (
                (handle / 2 - 8, bw / 2),
                (-handle / 2 + 10, bw / 2),
                (-handle / 2 + 4, -bw / 4),
                (handle / 2 - 8, -bw / 2),
            )
        else:  # open: blade beyond the handle
            blade_poly = (
                (handle / 2 - 8, bw / 2),
                (handle / 2 + blade, bw / 3),
                (handle / 2 + blade + 4, 0.0),
                (handle / 2 + blade * 0.6, -bw / 2),
                (handle / 2 - 8, -bw / 2),
            )
        prims.append(Plate("steel", blade_poly, _u(rng, 2.0, 3.5)))
        prims.append(Disc("steel", (handle / 2 - 8, 0.0), 4.0, hw * 0.6))
        prims.append(
            Stroke("steel", ((-handle / 2 + 4, hw / 2 - 3), (-handle / 2 + 45, hw / 2 - 3)), 6.0, thickness_mm=1.0)
        )  # clip
    else:  # utility knife: plastic or metal body, trapezoid blade, slider
        body, bw = _u(rng, 120, 170), _u(rng, 18, 26)
        mat = _choice(rng, ("nylon", "aluminium"))
        prims.append(Plate(mat, rounded_rect(body, bw, 5), 12.0 if mat == "nylon" else 3.0))
        ext = _u(rng, 0.0, 35.0)
        prims.append(
            Plate(
                "steel",
                (
                    (body / 2 - 50, bw * 0.35),
                    (body / 2 + ext, bw * 0.35),
                    (body / 2 + ext + 12, -bw * 0.3),
                    (body / 2 - 50, -bw * 0.3),
                ),
                0.6,
            )
        )
        prims.append(Plate("steel", rounded_rect(60, bw * 0.4, 2), 0.6))
        prims.append(Disc("steel", (0.0, bw / 3), 4.0, 6.0))
    return ObjectModel("knife", prims, is_threat=True)


def knife(rng: np.random.Generator) -> ObjectModel:
    if rng.random() < 0.3:
        return _folding_or_utility_knife(rng)
    total = _u(rng, 170, 320)
    blade = total * _u(rng, 0.5, 0.62)
    w = _u(rng, 16, 38)
    t = _u(rng, 1.4, 3.0)
    style = rng.integers(3)
    if style == 0:  # chef / kitchen: straight spine, curved edge
        edge = [(blade * f, -w / 2 + w * 0.9 * (f**2.2)) for f in np.linspace(0, 1, 8)]
        poly = [(0.0, w / 2), (blade, w / 2 - w * 0.05), *reversed(edge)]
    elif style == 1:  # dagger: double edge
        poly = [(0.0, w / 2), (blade * 0.75, w * 0.35), (blade, 0.0), (blade * 0.75, -w * 0.35), (0.0, -w / 2)]
    else:  # clip point / utility
        poly = [(0.0, w / 2), (blade * 0.65, w / 2), (blade, -w * 0.1), (blade * 0.8, -w / 2), (0.0, -w / 2)]
    handle_len = total - blade
    hw = w * _u(rng, 0.6, 0.9)
    prims: list[Primitive] = [Plate("steel", tuple(poly), t)]
    handle_mat = _choice(rng, ("nylon", "cellulose", "polyethylene", "aluminium"))
    scale = WOOD if handle_mat == "cellulose" else 1.0
    prims.append(
        Plate(
            handle_mat,
            rounded_rect(handle_len, hw, hw / 3),
            _u(rng, 10, 18) if handle_mat != "aluminium" else 3.0,
            density_scale=scale,
        )
    )
    prims[-1] = _shift(prims[-1], -handle_len / 2, 0.0)
    if rng.random() < 0.7:  # full tang and rivets
        prims.append(
            Plate(
                "steel",
                ((0.0, hw * 0.3), (-handle_len * 0.95, hw * 0.3), (-handle_len * 0.95, -hw * 0.3), (0.0, -hw * 0.3)),
                t,
            )
        )
        for k in range(int(rng.integers(2, 4))):
            prims.append(Disc("brass", (-handle_len * (0.2 + 0.3 * k), 0.0), 2.5, _u(rng, 10, 16)))  # noqa: PERF401
    prims.append(
        Plate("steel", ((0.0, hw * 0.7), (-4.0, hw * 0.7), (-4.0, -hw * 0.7), (0.0, -hw * 0.7)), _u(rng, 4, 10))
    )  # bolster
    return ObjectModel("knife", prims, is_threat=True)


def _shift(p: Primitive, du: float, dv: float) -> Primitive:
    """A copy of a polygon-like primitive moved by (du, dv)."""
    if isinstance(p, Plate):
        return Plate(p.material, tuple((u + du, v + dv) for u, v in p.polygon_uv), p.thickness_mm, p.density_scale)
    raise TypeError(f"cannot shift {type(p).__name__}")


def scissors(rng: np.random.Generator) -> ObjectModel:
    length = _u(rng, 130, 240)
    blade = length * 0.55
    w = _u(rng, 8, 14)
    t = _u(rng, 1.5, 2.5)
    open_angle = _u(rng, 0.0, 0.5)
    prims: list[Primitive] = []
    loop_mat = _choice(rng, ("polyethylene", "nylon", "steel"))
    for sign in (1.0, -1.0):
        a = sign * open_angle / 2
        c, s = math.cos(a), math.sin(a)

        def rot(u: float, v: float, c: float = c, s: float = s) -> tuple[float, float]:
            return (u * c - v * s, u * s + v * c)

        prims.append(
            Plate(
                "steel",
                (rot(0, w / 2 * sign), rot(blade, 0.5 * sign), rot(blade, -0.5 * sign), rot(0, -w / 2 * sign)),
                t,
            )
        )
        prims.append(
            Plate(
                "steel",
                (
                    rot(0, w / 3),
                    rot(-length * 0.2, w / 3 + sign * 6),
                    rot(-length * 0.2, -w / 3 + sign * 6),
                    rot(0, -w / 3),
                ),
                t,
            )
        )
        cu, cv = rot(-length * 0.3, sign * 12)
        ring = ellipse_points(cu, cv, length * 0.1, _u(rng, 9, 14), n=20)
        prims.append(Stroke(loop_mat, ring, _u(rng, 4, 7), closed=True))
    prims.append(Disc("steel", (0.0, 0.0), 3.5, 6.0))
    return ObjectModel("scissors", prims, is_threat=True)


def gun(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    if rng.random() < 0.65:  # semi-automatic pistol
        length = _u(rng, 150, 210)
        slide_h = _u(rng, 26, 34)
        prims.append(Plate("steel", rounded_rect(length, slide_h, 3.0), _u(rng, 6, 12)))
        prims.append(Rod("steel", (-length / 2 + 10, 4), (length / 2, 4), 6.5, wall_mm=2.5))
        grip_t = _u(rng, 24, 32)
        grip_mat = _choice(rng, ("nylon", "steel", "nylon"))
        g0 = -length / 2 + 8
        grip = (
            (g0 + 30, -slide_h / 2),
            (g0, -slide_h / 2),
            (g0 - 18, -slide_h / 2 - 100),
            (g0 + 14, -slide_h / 2 - 106),
            (g0 + 34, -slide_h / 2 - 12),
        )
        prims.append(Plate(grip_mat, grip, grip_t if grip_mat == "nylon" else 6.0))
        mag = (
            (g0 + 22, -slide_h / 2 - 5),
            (g0 + 6, -slide_h / 2 - 5),
            (g0 - 10, -slide_h / 2 - 98),
            (g0 + 6, -slide_h / 2 - 100),
        )
        prims.append(Plate("steel", mag, 2.0))
        for k in range(int(rng.integers(0, 8))):
            uu = g0 + 12 - k * 2.4
            vv = -slide_h / 2 - 15 - k * 10
            prims.append(
                Rod("brass", (uu - 8, vv), (uu + 12, vv), 4.5, wall_mm=0.4, fill="black_powder", fill_fraction=0.9)
            )
        guard = ellipse_points(g0 + 45, -slide_h / 2 - 14, 20, 13, n=14, start=math.pi, stop=2 * math.pi)
        prims.append(Stroke("steel" if grip_mat == "steel" else "nylon", guard, 4.5))
        prims.append(
            Plate(
                "steel",
                (
                    (g0 + 42, -slide_h / 2),
                    (g0 + 46, -slide_h / 2),
                    (g0 + 42, -slide_h / 2 - 16),
                    (g0 + 38, -slide_h / 2 - 15),
                ),
                6.0,
            )
        )
    else:  # revolver
        barrel = _u(rng, 60, 150)
        prims.append(Rod("steel", (0, 0), (barrel, 0), _u(rng, 8, 11)))
        prims.append(Plate("steel", rounded_rect(44, 38, 6), 35.0, density_scale=0.75))  # cylinder with chambers
        for k in range(int(rng.integers(0, 6))):
            prims.append(  # noqa: PERF401
                Rod("brass", (-18, -12 + k * 5), (18, -12 + k * 5), 4.5, wall_mm=0.4, fill="lead", fill_fraction=0.5)
            )
        prims.append(Plate("steel", ((-22, 19), (-50, 14), (-60, 0), (-30, -19), (-22, -19)), 14.0))
        grip_mat = _choice(rng, ("cellulose", "nylon"))
        prims.append(
            Plate(
                grip_mat,
                ((-40, -5), (-62, 0), (-95, -85), (-70, -95), (-40, -28)),
                30.0,
                density_scale=WOOD if grip_mat == "cellulose" else 1.0,
            )
        )
        prims.append(Stroke("steel", ellipse_points(-25, -30, 16, 12, n=12, start=math.pi, stop=2 * math.pi), 4.0))
    return ObjectModel("gun", prims, is_threat=True)


def bullet(rng: np.random.Generator) -> ObjectModel:
    length = _u(rng, 25, 70)
    radius = _u(rng, 4.0, 6.5) if length < 45 else _u(rng, 3.5, 6.0)
    case_len = length * 0.65
    prims: list[Primitive] = [
        Rod("brass", (0, 0), (case_len, 0), radius, wall_mm=0.5, fill="black_powder", fill_fraction=0.95),
        Rod(_choice(rng, ("lead", "copper", "brass")), (case_len - 2, 0), (length, 0), radius * 0.9, rounded_ends=True),
        Disc("brass", (0.0, 0.0), radius, 1.5),
    ]
    return ObjectModel("bullet", prims, is_threat=True)


def baton(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    style = rng.integers(3)
    if style == 0:  # telescopic steel, extended
        segs = (_u(rng, 160, 220), _u(rng, 140, 190), _u(rng, 120, 170))
        radii = (12.0, 9.5, 7.0)
        u = 0.0
        for seg, r in zip(segs, radii, strict=True):
            prims.append(Rod("steel", (u, 0), (u + seg, 0), r, wall_mm=_u(rng, 1.2, 2.0)))
            u += seg - 20
        prims.append(Rod("steel", (u + 10, 0), (u + 22, 0), 9.0, rounded_ends=True))
        prims.append(Rod("polyethylene", (0, 0), (segs[0] * 0.8, 0), 15.0, wall_mm=3.0, density_scale=1.1))
    elif style == 1:  # telescopic, collapsed
        length = _u(rng, 160, 230)
        for r in (12.0, 9.5, 7.0):
            prims.append(Rod("steel", (0, 0), (length, 0), r, wall_mm=1.5))  # noqa: PERF401
        prims.append(Rod("steel", (length, 0), (length + 12, 0), 9.0, rounded_ends=True))
        prims.append(Rod("polyethylene", (0, 0), (length * 0.8, 0), 15.0, wall_mm=3.0))
    else:  # solid rubber / polymer side-handle baton
        length = _u(rng, 450, 650)
        mat = _choice(rng, ("polyethylene", "nylon", "aluminium"))
        prims.append(Rod(mat, (0, 0), (length, 0), _u(rng, 14, 18), wall_mm=None if mat != "aluminium" else 2.5))
        if rng.random() < 0.6:
            prims.append(Rod(mat, (120, 0), (120, 130), 14.0, wall_mm=None if mat != "aluminium" else 2.5))
    return ObjectModel("baton", prims, is_threat=True)


def hammer(rng: np.random.Generator) -> ObjectModel:
    handle = _u(rng, 250, 380)
    head = _u(rng, 90, 140)
    hr = _u(rng, 11, 16)
    prims: list[Primitive] = []
    mat = _choice(rng, ("cellulose", "glass", "steel"))
    if mat == "cellulose":
        prims.append(Rod("cellulose", (0, 0), (handle, 0), 15.0, density_scale=WOOD))
    elif mat == "glass":  # fibreglass handle with rubber grip
        prims.append(Rod("glass", (0, 0), (handle, 0), 13.0, density_scale=0.75))
        prims.append(Rod("polyethylene", (0, 0), (handle * 0.45, 0), 17.0, wall_mm=4.0))
    else:
        prims.append(Rod("steel", (0, 0), (handle, 0), 12.0, wall_mm=2.0))
        prims.append(Rod("polyethylene", (0, 0), (handle * 0.45, 0), 17.0, wall_mm=4.0))
    # head across the handle end: face side and claw side
    prims.append(Rod("steel", (handle, -head * 0.35), (handle, head * 0.25), hr))
    claw = (
        (handle - hr * 0.8, head * 0.2),
        (handle + hr * 0.8, head * 0.2),
        (handle + hr * 1.3, head * 0.65),
        (handle + 2, head * 0.62),
    )
    prims.append(Plate("steel", claw, hr * 1.2))
    return ObjectModel("hammer", prims, is_threat=True)


def pliers(rng: np.random.Generator) -> ObjectModel:
    length = _u(rng, 140, 250)
    jaw = length * _u(rng, 0.22, 0.32)
    handle = length - jaw
    spread = _u(rng, 14, 30)  # half distance between the handle ends
    open_angle = _u(rng, 0.0, 0.3)
    t = _u(rng, 7, 11)
    jaw_w = _u(rng, 7, 11)
    prims: list[Primitive] = []
    sleeve = rng.random() < 0.8
    sleeve_mat = _choice(rng, ("pvc", "polyethylene", "nylon"))
    for sign in (1.0, -1.0):
        a = sign * open_angle / 2
        c, s = math.cos(a), math.sin(a)

        def rot(u: float, v: float, c: float = c, s: float = s) -> tuple[float, float]:
            return (u * c - v * s, u * s + v * c)

        # jaw: tapered, meets the other jaw on the axis
        prims.append(
            Plate(
                "steel",
                (
                    rot(-4, sign * jaw_w),
                    rot(jaw * 0.6, sign * jaw_w * 0.8),
                    rot(jaw, sign * 1.5),
                    rot(jaw, 0),
                    rot(-4, 0),
                ),
                t,
            )
        )
        # handle: widens away from the pivot
        h_end = (-handle, sign * spread)
        prims.append(
            Plate(
                "steel",
                (rot(4, sign * 6), (h_end[0], h_end[1] + sign * 5), (h_end[0], h_end[1] - sign * 5), rot(4, -sign * 3)),
                t * 0.8,
            )
        )
        if sleeve:
            prims.append(Rod(sleeve_mat, (-18.0, sign * 6.0), (h_end[0] + 3, h_end[1]), 7.5, wall_mm=2.5))
    prims.append(Disc("steel", (0.0, 0.0), 9.0, t * 1.8))
    return ObjectModel("pliers", prims, is_threat=True)


def wrench(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    t = _u(rng, 4, 8)
    if rng.random() < 0.6:  # combination spanner
        length = _u(rng, 120, 300)
        size = _u(rng, 8, 24)
        prims.append(
            Plate("steel", ((0, size * 0.35), (length, size * 0.3), (length, -size * 0.3), (0, -size * 0.35)), t)
        )
        prims.append(
            Stroke(
                "steel",
                ellipse_points(length + size * 0.6, 0, size * 0.75, size * 0.75, n=18),
                size * 0.45,
                closed=True,
                thickness_mm=t * 1.3,
            )
        )
        jaw = (
            (0, size * 0.4),
            (-size * 0.3, size * 1.0),
            (-size * 1.6, size * 1.1),
            (-size * 1.6, size * 0.5),
            (-size * 0.6, size * 0.45),
            (-size * 0.6, -size * 0.45),
            (-size * 1.6, -size * 0.5),
            (-size * 1.6, -size * 1.1),
            (-size * 0.3, -size * 1.0),
            (0, -size * 0.4),
        )
        prims.append(Plate("steel", jaw, t))
    else:  # adjustable wrench
        length = _u(rng, 150, 300)
        prims.append(Plate("steel", rounded_rect(length, length * 0.12, 6), t * 1.2))
        prims[-1] = _shift(prims[-1], length / 2, 0.0)
        head = length * 0.25
        prims.append(
            Plate(
                "steel",
                (
                    (0, head * 0.2),
                    (-head * 0.2, head * 0.7),
                    (-head * 0.9, head * 0.75),
                    (-head * 0.9, head * 0.3),
                    (-head * 0.35, head * 0.25),
                    (-head * 0.35, -head * 0.5),
                    (0, -head * 0.55),
                ),
                t * 2.2,
            )
        )
        prims.append(Rod("steel", (-head * 0.2, -head * 0.2), (head * 0.15, -head * 0.2), head * 0.12))
    return ObjectModel("wrench", prims, is_threat=True)


def handcuffs(rng: np.random.Generator) -> ObjectModel:
    r = _u(rng, 32, 40)
    gap = _u(rng, 20, 60)
    prims: list[Primitive] = []
    for sign in (-1.0, 1.0):
        cu = sign * (r + gap / 2)
        prims.append(
            Stroke(
                "steel",
                ellipse_points(cu, 0, r, r * _u(rng, 0.85, 1.0), n=28),
                7.0,
                closed=True,
                thickness_mm=_u(rng, 4, 6),
            )
        )
        prims.append(
            Plate(
                "steel",
                (
                    (cu - sign * r * 0.9, -10),
                    (cu - sign * (r + 18), -8),
                    (cu - sign * (r + 18), 8),
                    (cu - sign * r * 0.9, 10),
                ),
                10.0,
            )
        )
    if gap > 30:  # chain
        n = max(2, int(gap // 12))
        for k in range(n):
            u = -gap / 2 + 6 + k * (gap - 12) / max(n - 1, 1)
            prims.append(Stroke("steel", ellipse_points(u, 0, 6.5, 4.0, n=10), 2.5, closed=True))
    else:
        prims.append(Plate("steel", rounded_rect(gap + 16, 12, 4), 8.0))
    return ObjectModel("handcuffs", prims, is_threat=True)


def powerbank(rng: np.random.Generator) -> ObjectModel:
    n_cells = int(rng.integers(1, 5))
    pouch = rng.random() < 0.35
    prims: list[Primitive] = []
    if pouch:
        length, width = _u(rng, 90, 150), _u(rng, 60, 80)
        prims.append(Plate("li_ion_core", rounded_rect(length * 0.85, width * 0.85, 3), _u(rng, 7, 14)))
        prims.append(Plate("aluminium", rounded_rect(length * 0.85, width * 0.85, 3), 0.3))
    else:
        length = _u(rng, 70, 75)
        width = n_cells * 19.0 + 6
        for k in range(n_cells):
            prims += _cell(65.0, 9.1, 0.0, -width / 2 + 12 + k * 19.0)
    case_mat = _choice(rng, ("nylon", "aluminium", "polyethylene"))
    case_t = 3.0 if case_mat != "aluminium" else 1.6
    prims.insert(0, Plate(case_mat, rounded_rect(length + 14, width + 6, 6), case_t))
    prims.append(
        Plate(
            "fr4",
            (
                (length / 2 - 2, width / 2 - 3),
                (length / 2 + 6, width / 2 - 3),
                (length / 2 + 6, -width / 2 + 3),
                (length / 2 - 2, -width / 2 + 3),
            ),
            1.6,
        )
    )
    for k in range(int(rng.integers(1, 3))):
        prims.append(
            Plate(
                "steel",
                (
                    (length / 2 + 3, -12 + 14 * k),
                    (length / 2 + 9, -12 + 14 * k),
                    (length / 2 + 9, -3 + 14 * k),
                    (length / 2 + 3, -3 + 14 * k),
                ),
                2.0,
            )
        )
    return ObjectModel("powerbank", prims, is_threat=True)


def lithium_battery(rng: np.random.Generator) -> ObjectModel:
    style = rng.integers(3)
    prims: list[Primitive] = []
    if style == 0:  # 18650 / 21700 single cell
        big = rng.random() < 0.4
        prims += _cell(70.0 if big else 65.0, 10.5 if big else 9.1)
    elif style == 1:  # pack of cells shrink-wrapped
        n = int(rng.integers(2, 5))
        for k in range(n):
            prims += _cell(65.0, 9.1, 0.0, k * 18.4)
        prims.append(Plate("pvc", rounded_rect(68, n * 18.4 + 2, 4), 0.3))
        prims[-1] = Plate("pvc", tuple((u, v + (n - 1) * 9.2) for u, v in rounded_rect(68, n * 18.4 + 2, 4)), 0.3)
    else:  # pouch cell (phone / drone battery)
        length, width = _u(rng, 50, 110), _u(rng, 30, 70)
        prims.append(Plate("li_ion_core", rounded_rect(length, width, 2), _u(rng, 4, 9)))
        prims.append(Plate("aluminium", rounded_rect(length, width, 2), 0.3))
        prims.append(
            Plate(
                "fr4",
                (
                    (length / 2, width / 3),
                    (length / 2 + 5, width / 3),
                    (length / 2 + 5, -width / 3),
                    (length / 2, -width / 3),
                ),
                1.2,
            )
        )
        prims.append(Stroke("copper", ((length / 2 + 5, 0), (length / 2 + 40, _u(rng, -10, 10))), 1.2))
    return ObjectModel("lithium_battery", prims, is_threat=True)


def lighter(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    if rng.random() < 0.7:  # disposable
        length, width = _u(rng, 65, 82), _u(rng, 20, 26)
        prims.append(Plate(_choice(rng, ("nylon", "polyethylene")), rounded_rect(length, width, 6), 5.0))
        level = _u(rng, 0.3, 0.9)
        prims.append(
            Plate(
                "butane",
                tuple(
                    (u * level - length * (1 - level) / 2, v * 0.85)
                    for u, v in rounded_rect(length * 0.8, width * 0.9, 5)
                ),
                9.0,
            )
        )
        prims.append(
            Plate(
                "steel",
                (
                    (length / 2 - 2, width / 2),
                    (length / 2 + 16, width / 2),
                    (length / 2 + 16, -width / 2),
                    (length / 2 - 2, -width / 2),
                ),
                1.2,
            )
        )
        prims.append(Disc("steel", (length / 2 + 9, width / 4), 5.0, 6.0))
        prims.append(Stroke("steel", ((length / 2 - 20, 0), (length / 2 + 5, 0)), 1.2))
    else:  # metal petrol lighter
        length, width = _u(rng, 55, 60), _u(rng, 36, 39)
        prims.append(Plate("steel", rounded_rect(length, width, 4), 1.6))
        prims.append(Stroke("steel", rounded_rect(length, width, 4), 1.2, closed=True, thickness_mm=12.0))
        prims.append(Plate("cellulose", rounded_rect(length * 0.75, width * 0.8, 3), 12.0, density_scale=0.3))
        prims.append(Disc("steel", (length / 2 - 8, width / 4), 4.0, 6.0))
    return ObjectModel("lighter", prims, is_threat=True)


def sprayer(rng: np.random.Generator) -> ObjectModel:
    small = rng.random() < 0.3  # pepper spray
    length = _u(rng, 80, 110) if small else _u(rng, 140, 230)
    radius = _u(rng, 11, 16) if small else _u(rng, 22, 33)
    mat = _choice(rng, ("aluminium", "steel"))
    wall = 0.45 if mat == "aluminium" else 0.22
    fill = _choice(rng, ("water", "ethanol", "butane"))
    prims: list[Primitive] = [
        Rod(mat, (0, 0), (length, 0), radius, wall_mm=wall, fill=fill, fill_fraction=_u(rng, 0.5, 0.97)),
        Disc(mat, (length, 0.0), radius * 0.6, 4.0),
        Rod("steel", (length, 0), (length + 8, 0), 3.0),
        Rod(
            _choice(rng, ("polyethylene", "nylon")),
            (length + 2, 0),
            (length + radius * 1.2, 0),
            radius * 0.95,
            wall_mm=1.5,
        ),
        Rod("steel", (8, 0), (length, 0), 1.5),  # dip tube and spring hint
    ]
    return ObjectModel("sprayer", prims, is_threat=True)


def flammable_liquid(rng: np.random.Generator) -> ObjectModel:
    fuel = _choice(rng, ("petrol", "ethanol", "ethanol"))
    style = rng.integers(3)
    prims: list[Primitive] = []
    if style == 0:  # metal fuel bottle
        length, radius = _u(rng, 160, 280), _u(rng, 35, 45)
        mat = _choice(rng, ("aluminium", "steel"))
        prims.append(
            Rod(
                mat,
                (0, 0),
                (length, 0),
                radius,
                wall_mm=0.9 if mat == "aluminium" else 0.5,
                fill=fuel,
                fill_fraction=_u(rng, 0.6, 0.97),
            )
        )
        prims.append(Rod("brass", (length, 0), (length + 18, 0), radius * 0.4))
        prims.append(Stroke("steel", ellipse_points(length + 25, 0, 10, 8, n=12), 2.0, closed=True))
    elif style == 1:  # glass spirit bottle with long neck
        length, radius = _u(rng, 170, 240), _u(rng, 30, 42)
        prims.append(
            Rod(
                "glass", (0, 0), (length, 0), radius, wall_mm=_u(rng, 3, 5), fill=fuel, fill_fraction=_u(rng, 0.7, 0.97)
            )
        )
        prims.append(Rod("glass", (length, 0), (length + 70, 0), radius * 0.35, wall_mm=3.0, fill=fuel))
        prims.append(Rod("aluminium", (length + 65, 0), (length + 85, 0), radius * 0.4, wall_mm=0.3))
    else:  # HDPE jerrycan / canister
        length, width = _u(rng, 180, 300), _u(rng, 120, 200)
        depth = _u(rng, 60, 120)
        prims.append(Plate("polyethylene", rounded_rect(length, width, 15), 5.0))
        prims.append(Stroke("polyethylene", rounded_rect(length, width, 15), 3.0, closed=True, thickness_mm=depth))
        prims.append(Plate(fuel, rounded_rect(length - 8, width - 8, 12), depth * _u(rng, 0.5, 0.95)))
        prims.append(Plate("polyethylene", rounded_rect(length * 0.4, 25, 8), 25.0))
        prims[-1] = Plate(
            "polyethylene", tuple((u, v + width / 2 + 10) for u, v in rounded_rect(length * 0.4, 25, 8)), 25.0
        )
        prims.append(
            Rod("polyethylene", (length / 2 - 20, -width / 3), (length / 2 + 25, -width / 3), 18.0, wall_mm=3.0)
        )
    return ObjectModel("flammable_liquid", prims, is_threat=True)


def firecracker(rng: np.random.Generator) -> ObjectModel:
    n = int(rng.integers(1, 16))
    length = _u(rng, 30, 120)
    radius = _u(rng, 3.0, 9.0) if n > 1 else _u(rng, 8.0, 20.0)
    cols = max(1, math.ceil(math.sqrt(n)))
    prims: list[Primitive] = []
    for k in range(n):
        v = (k % cols) * radius * 2.05
        du = (k // cols) * 0.0
        prims.append(
            Rod(
                "cellulose",
                (du, v),
                (du + length, v),
                radius,
                wall_mm=radius * 0.35,
                fill="black_powder",
                fill_fraction=0.95,
            )
        )
        prims.append(Rod("glass", (du, v), (du + 6, v), radius * 0.65, density_scale=0.7))  # clay plug
        prims.append(Rod("glass", (du + length - 6, v), (du + length, v), radius * 0.65, density_scale=0.7))
    fuse_v = (min(cols, n) - 1) * radius * 1.02
    prims.append(
        Stroke(
            "black_powder",
            ((length, fuse_v), (length + _u(rng, 20, 60), fuse_v + _u(rng, -15, 15))),
            2.0,
            density_scale=0.6,
        )
    )
    if n > 1:
        prims.append(
            Plate(
                "cellulose",
                (
                    (0, -radius),
                    (length, -radius),
                    (length, cols * radius * 2.05 - radius),
                    (0, cols * radius * 2.05 - radius),
                ),
                0.4,
            )
        )
    return ObjectModel("firecracker", prims, is_threat=True)


THREATS: dict[str, Generator] = {
    "baton": baton,
    "pliers": pliers,
    "hammer": hammer,
    "powerbank": powerbank,
    "scissors": scissors,
    "wrench": wrench,
    "gun": gun,
    "bullet": bullet,
    "sprayer": sprayer,
    "handcuffs": handcuffs,
    "knife": knife,
    "lighter": lighter,
    "lithium_battery": lithium_battery,
    "flammable_liquid": flammable_liquid,
    "firecracker": firecracker,
}


# ---------------------------------------------------------------- clutter


def clothes(rng: np.random.Generator) -> ObjectModel:
    length, width = _u(rng, 150, 420), _u(rng, 120, 320)
    mat = _choice(rng, ("cellulose", "pet", "nylon", "cellulose"))
    prims: list[Primitive] = [
        Textile(
            mat,
            blob(rng, length, width, 0.25),
            _u(rng, 4, 30),
            variation=_u(rng, 0.4, 1.0),
            density_scale=_u(rng, 0.15, 0.35),
            seed=int(rng.integers(1 << 30)),
            folds=int(rng.integers(1, 6)),
        )
    ]
    if rng.random() < 0.3:  # zip
        u0 = _u(rng, -length / 3, 0)
        prims.append(
            Stroke(
                "steel",
                ((u0, -width / 3), (u0 + _u(rng, 60, 160), _u(rng, -width / 3, width / 3))),
                4.0,
                thickness_mm=0.4,
            )
        )
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(2, 7))):
            prims.append(  # noqa: PERF401
                Disc(
                    _choice(rng, ("polyethylene", "nylon", "brass")),
                    (_u(rng, -length / 3, length / 3), _u(rng, -width / 3, width / 3)),
                    _u(rng, 4, 8),
                    2.0,
                )
            )
    return ObjectModel("clothes", prims)


def book(rng: np.random.Generator) -> ObjectModel:
    length, width = _u(rng, 140, 300), _u(rng, 100, 220)
    prims: list[Primitive] = [
        Plate("cellulose", rounded_rect(length, width, 2), _u(rng, 5, 35), density_scale=_u(rng, 0.5, 0.65))
    ]
    if rng.random() < 0.3:  # spiral binding
        prims.append(
            Stroke(
                "steel", tuple((-length / 2 + 4.0 * (k % 2), -width / 2 + 6 * k) for k in range(int(width // 6))), 1.0
            )
        )
    elif rng.random() < 0.3:
        for k in range(2):
            prims.append(  # noqa: PERF401
                Stroke(
                    "steel",
                    ((-length / 2 + 5, -width / 4 + k * width / 2), (-length / 2 + 5, -width / 4 + k * width / 2 + 12)),
                    0.6,
                )
            )
    return ObjectModel("books", prims)


def shoes(rng: np.random.Generator) -> ObjectModel:
    length, width = _u(rng, 240, 310), _u(rng, 85, 110)
    outline = (
        (-length / 2, -width * 0.3),
        (-length * 0.2, -width * 0.4),
        (length * 0.3, -width / 2),
        (length / 2, -width * 0.2),
        (length / 2, width * 0.2),
        (length * 0.3, width / 2),
        (-length * 0.2, width * 0.4),
        (-length / 2, width * 0.3),
    )
    prims: list[Primitive] = [
        Plate("polyethylene", outline, _u(rng, 15, 35), density_scale=_u(rng, 0.5, 1.1)),
        Plate(
            "polyethylene",
            (
                (-length / 2, -width * 0.3),
                (-length * 0.25, -width * 0.38),
                (-length * 0.25, width * 0.38),
                (-length / 2, width * 0.3),
            ),
            15.0,
            density_scale=0.8,
        ),
        Textile(
            "nylon",
            blob(rng, length * 0.8, width * 1.1, 0.1),
            40.0,
            density_scale=0.05,
            seed=int(rng.integers(1 << 30)),
        ),
    ]
    if rng.random() < 0.5:
        for k in range(5):
            for sign in (-1, 1):
                prims.append(  # noqa: PERF401
                    Stroke("steel", ellipse_points(length * 0.05 + k * 14, sign * 18, 2.5, 2.5, n=8), 1.0, closed=True)
                )
    if rng.random() < 0.2:
        prims.append(Plate("steel", rounded_rect(90, 12, 3), 1.2))
    return ObjectModel("shoes", prims)


def food(rng: np.random.Generator) -> ObjectModel:
    kind = rng.integers(4)
    if kind == 0:  # dry food box
        length, width = _u(rng, 150, 300), _u(rng, 80, 200)
        return ObjectModel(
            "food",
            [
                Plate("cellulose", rounded_rect(length, width, 2), 0.8),
                Plate(
                    "sucrose", rounded_rect(length - 6, width - 6, 2), _u(rng, 40, 90), density_scale=_u(rng, 0.2, 0.5)
                ),
            ],
        )
    if kind == 1:  # tin can lying or standing
        r = _u(rng, 32, 50)
        h = _u(rng, 60, 120)
        if rng.random() < 0.75:  # lying
            return ObjectModel("food", [Rod("steel", (0, 0), (h, 0), r, wall_mm=0.2, fill="water", fill_fraction=0.98)])
        return ObjectModel(
            "food",
            [Disc("steel", (0.0, 0.0), r, 0.5, wall_height_mm=h, wall_mm=0.2, fill="water", fill_height_mm=h * 0.95)],
        )
    if kind == 2:  # fruit / vegetables
        prims: list[Primitive] = []
        for _ in range(int(rng.integers(1, 5))):
            a = _u(rng, 30, 50)
            prims.append(
                Ellipsoid(
                    "water", (_u(rng, -40, 40), _u(rng, -40, 40)), a, a * _u(rng, 0.8, 1.0), a * 1.8, density_scale=0.85
                )
            )
        return ObjectModel("food", prims)
    length, width = _u(rng, 100, 180), _u(rng, 40, 80)  # chocolate bar in foil
    return ObjectModel(
        "food",
        [
            Plate("sucrose", rounded_rect(length, width, 2), _u(rng, 8, 15), density_scale=0.8),
            Plate("aluminium", rounded_rect(length, width, 2), 0.03),
        ],
    )


def water_bottle(rng: np.random.Generator) -> ObjectModel:
    length, radius = _u(rng, 150, 280), _u(rng, 28, 45)
    level = _u(rng, 0.5, 0.98)
    prims: list[Primitive] = [
        Rod("pet", (0, 0), (length, 0), radius, wall_mm=0.35, fill="water", fill_fraction=level),
        Rod("pet", (length, 0), (length + 35, 0), radius * 0.5, wall_mm=0.8),
        Rod("polyethylene", (length + 30, 0), (length + 45, 0), radius * 0.55),
    ]
    for k in range(int(rng.integers(0, 5))):  # ridges
        u = length * (0.2 + 0.15 * k)
        prims.append(Rod("pet", (u, 0), (u + 3, 0), radius, wall_mm=0.8))
    return ObjectModel("bottle", prims)


def _spline(rng: np.random.Generator, n: int, span: float) -> tuple[tuple[float, float], ...]:
    pts = np.cumsum(rng.normal(0, span / 5, size=(n, 2)), axis=0)
    pts -= pts.mean(axis=0)
    # smooth with a moving average over a denser polyline
    dense = np.concatenate([np.linspace(pts[i], pts[i + 1], 6, endpoint=False) for i in range(n - 1)] + [pts[-1:]])
    kernel = np.ones(5) / 5
    smooth = np.stack([np.convolve(dense[:, k], kernel, mode="same") for k in (0, 1)], axis=1)[2:-2]
    return tuple((float(a), float(b)) for a, b in smooth)


def cable(rng: np.random.Generator) -> ObjectModel:
    path = _spline(rng, int(rng.integers(5, 14)), _u(rng, 150, 400))
    width = _u(rng, 3.5, 7.0)
    prims: list[Primitive] = [Stroke("pvc", path, width), Stroke("copper", path, _u(rng, 0.6, 1.6))]
    end = path[-1]
    if rng.random() < 0.7:  # plug or charger
        prims.append(
            Plate(
                "nylon",
                tuple((end[0] + u, end[1] + v) for u, v in rounded_rect(_u(rng, 25, 60), _u(rng, 15, 45), 5)),
                _u(rng, 12, 25),
            )
        )
        prims.append(Stroke("brass", ((end[0] + 10, end[1] - 4), (end[0] + 28, end[1] - 4)), 2.0))
        prims.append(Stroke("brass", ((end[0] + 10, end[1] + 4), (end[0] + 28, end[1] + 4)), 2.0))
        if rng.random() < 0.4:  # charger transformer and board
            prims.append(Plate("fr4", tuple((end[0] + u, end[1] + v) for u, v in rounded_rect(30, 25, 2)), 1.6))
            prims.append(Disc("steel", (end[0] - 5, end[1]), 8.0, 12.0, density_scale=0.6))
    return ObjectModel("cable", prims)


def electronics(rng: np.random.Generator) -> ObjectModel:
    length, width = _u(rng, 80, 320), _u(rng, 60, 240)
    prims: list[Primitive] = []
    case = _choice(rng, ("nylon", "aluminium", "polyethylene", "glass"))
    prims.append(
        Plate(
            case,
            rounded_rect(length, width, 8),
            {"nylon": 4.0, "aluminium": _u(rng, 1.0, 2.5), "polyethylene": 4.0, "glass": 1.2}[case],
        )
    )
    if case == "glass":  # phone / tablet with frame
        prims.append(Stroke("aluminium", rounded_rect(length, width, 8), 2.5, closed=True, thickness_mm=8.0))
    bl, bw = length * _u(rng, 0.5, 0.9), width * _u(rng, 0.5, 0.9)
    prims.append(Plate("fr4", rounded_rect(bl, bw, 2), 1.6))
    prims.append(Plate("copper", rounded_rect(bl, bw, 2), 0.07))
    for _ in range(min(40, max(3, int(bl * bw / 900 * rng.uniform(0.3, 1.0))))):  # chips, connectors, capacitors
        cu, cv = _u(rng, -bl / 2 + 8, bl / 2 - 8), _u(rng, -bw / 2 + 8, bw / 2 - 8)
        kind = rng.integers(4)
        if kind == 0:
            s = _u(rng, 5, 25)
            prims.append(Plate("nylon", tuple((cu + u, cv + v) for u, v in rounded_rect(s, s, 1)), 1.5))
            prims.append(Plate("silicon", tuple((cu + u, cv + v) for u, v in rounded_rect(s * 0.4, s * 0.4, 0.5)), 0.4))
            prims.append(
                Stroke(
                    "copper",
                    rounded_rect(s, s, 1) and tuple((cu + u, cv + v) for u, v in rounded_rect(s, s, 1)),
                    0.8,
                    closed=True,
                    thickness_mm=0.3,
                )
            )
        elif kind == 1:
            prims.append(
                Disc(
                    "aluminium",
                    (cu, cv),
                    _u(rng, 2.5, 6),
                    0.3,
                    wall_height_mm=_u(rng, 6, 14),
                    wall_mm=0.3,
                    fill="water",
                    fill_height_mm=8.0,
                )
            )
        elif kind == 2:
            prims.append(
                Plate("steel", tuple((cu + u, cv + v) for u, v in rounded_rect(_u(rng, 8, 20), _u(rng, 6, 14), 1)), 0.4)
            )
            prims.append(
                Stroke(
                    "steel",
                    rounded_rect(10, 8, 1)
                    and tuple((cu + u, cv + v) for u, v in rounded_rect(_u(rng, 8, 20), _u(rng, 6, 14), 1)),
                    0.6,
                    closed=True,
                    thickness_mm=6.0,
                )
            )
        else:
            prims.append(Disc("steel", (cu, cv), _u(rng, 1.2, 2.5), _u(rng, 4, 10)))  # screws
    for _ in range(min(60, max(4, int(bl * bw / 600 * rng.uniform(0.3, 1.0))))):  # traces
        u0, v0 = _u(rng, -bl / 2, bl / 2), _u(rng, -bw / 2, bw / 2)
        u1 = u0 + _u(rng, -bl / 2, bl / 2) * (rng.random() < 0.5)
        v1 = v0 + _u(rng, -bw / 2, bw / 2) * (u1 == u0)
        prims.append(
            Stroke(
                "copper",
                ((u0, v0), (float(np.clip(u1, -bl / 2, bl / 2)), float(np.clip(v1, -bw / 2, bw / 2)))),
                _u(rng, 0.3, 1.2),
                thickness_mm=0.07,
            )
        )
    if rng.random() < 0.4:  # heatsink / shield
        prims.append(
            Plate(
                "aluminium",
                tuple((u + _u(rng, -bl / 4, bl / 4), v) for u, v in rounded_rect(bl * 0.3, bw * 0.3, 2)),
                _u(rng, 3, 10),
                density_scale=0.6,
            )
        )
    return ObjectModel("electronics", prims)


def can(rng: np.random.Generator) -> ObjectModel:
    r, h = _u(rng, 26, 34), _u(rng, 100, 170)
    if rng.random() < 0.5:
        return ObjectModel(
            "can",
            [
                Rod("aluminium", (0, 0), (h, 0), r, wall_mm=0.12, fill="water", fill_fraction=_u(rng, 0.7, 0.98)),
                Disc("aluminium", (h, 0.0), r * 0.8, 0.3),
            ],
        )
    return ObjectModel(
        "can",
        [Disc("aluminium", (0.0, 0.0), r, 0.6, wall_height_mm=h, wall_mm=0.12, fill="water", fill_height_mm=h * 0.9)],
    )


def tools(rng: np.random.Generator) -> ObjectModel:
    kind = rng.integers(4)
    if kind == 0:  # screwdriver
        shaft = _u(rng, 60, 200)
        return ObjectModel(
            "tools",
            [
                Rod("steel", (0, 0), (shaft, 0), _u(rng, 2, 4)),
                Rod(_choice(rng, ("nylon", "polyethylene")), (-_u(rng, 80, 110), 0), (0, 0), _u(rng, 10, 16)),
            ],
        )
    if kind == 1:  # tape measure
        r = _u(rng, 25, 35)
        return ObjectModel(
            "tools",
            [
                Disc("nylon", (0.0, 0.0), r, 6.0, wall_height_mm=40, wall_mm=2.5),
                Disc("steel", (0.0, 0.0), r * 0.7, 4.0, density_scale=0.5),
            ],
        )
    if kind == 2:  # keys on a ring
        prims: list[Primitive] = [Stroke("steel", ellipse_points(0, 0, 12, 12, n=16), 1.5, closed=True)]
        for k in range(int(rng.integers(1, 5))):
            a = _u(rng, 0, 2 * math.pi)
            cu, cv = 12 * math.cos(a), 12 * math.sin(a)
            key = ((cu, cv), (cu + 55 * math.cos(a), cv + 55 * math.sin(a)))
            prims.append(Stroke(_choice(rng, ("brass", "steel")), key, _u(rng, 8, 12), thickness_mm=2.0))
            del k
        return ObjectModel("tools", prims)
    prims = []  # coins
    for _ in range(int(rng.integers(1, 8))):
        prims.append(
            Disc(
                _choice(rng, ("copper", "brass", "steel", "aluminium")),
                (_u(rng, -30, 30), _u(rng, -30, 30)),
                _u(rng, 8, 13),
                _u(rng, 1.5, 2.3),
            )
        )
    return ObjectModel("tools", prims)


def cosmetics(rng: np.random.Generator) -> ObjectModel:
    if rng.random() < 0.5:  # tube / bottle of lotion
        length, radius = _u(rng, 80, 180), _u(rng, 15, 30)
        return ObjectModel(
            "cosmetics",
            [
                Rod(
                    "polyethylene",
                    (0, 0),
                    (length, 0),
                    radius,
                    wall_mm=1.0,
                    fill="water",
                    fill_fraction=_u(rng, 0.5, 0.95),
                ),
                Rod("polyethylene", (length, 0), (length + 20, 0), radius * 0.6),
            ],
        )
    r = _u(rng, 25, 45)  # glass jar standing
    h = _u(rng, 40, 90)
    return ObjectModel(
        "cosmetics",
        [
            Disc("glass", (0.0, 0.0), r, 4.0, wall_height_mm=h, wall_mm=3.0, fill="water", fill_height_mm=h * 0.8),
            Disc("polyethylene", (0.0, 0.0), r + 2, 3.0),
        ],
    )


def toy(rng: np.random.Generator) -> ObjectModel:
    prims: list[Primitive] = []
    for _ in range(int(rng.integers(1, 5))):
        prims.append(  # noqa: PERF401
            Ellipsoid(
                "polyethylene",
                (_u(rng, -50, 50), _u(rng, -50, 50)),
                _u(rng, 15, 60),
                _u(rng, 15, 60),
                _u(rng, 5, 40),
                density_scale=_u(rng, 0.1, 0.9),
            )
        )
    if rng.random() < 0.3:
        prims.append(Disc("steel", (0.0, 0.0), 5.0, 3.0))
        prims.append(Stroke("copper", ((0, 0), (_u(rng, 20, 40), _u(rng, -20, 20))), 0.5))
    return ObjectModel("toy", prims)


def padding(rng: np.random.Generator) -> ObjectModel:
    length, width = _u(rng, 150, 400), _u(rng, 120, 300)
    mat = _choice(rng, ("polyethylene", "cellulose"))
    return ObjectModel(
        "padding",
        [
            Textile(
                mat,
                blob(rng, length, width, 0.3),
                _u(rng, 20, 60),
                variation=0.8,
                density_scale=0.03 if mat == "polyethylene" else 0.08,
                seed=int(rng.integers(1 << 30)),
                folds=4,
            )
        ],
    )


def cutlery(rng: np.random.Generator) -> ObjectModel:
    """Spoons and forks: benign steel that a detector must not call a knife."""
    prims: list[Primitive] = []
    for k in range(int(rng.integers(1, 4))):
        v = k * 30.0
        length = _u(rng, 140, 200)
        prims.append(Plate("steel", ((0, v - 4), (length * 0.62, v - 5), (length * 0.62, v + 5), (0, v + 4)), 1.8))
        if rng.random() < 0.5:  # spoon bowl
            prims.append(Plate("steel", ellipse_points(length * 0.78, v, length * 0.17, 20, n=18), 1.2))
        else:  # fork tines
            prims.append(
                Plate(
                    "steel",
                    ((length * 0.62, v - 11), (length * 0.7, v - 12), (length * 0.7, v + 12), (length * 0.62, v + 11)),
                    1.8,
                )
            )
            for t in (-9.0, -3.0, 3.0, 9.0):
                prims.append(Stroke("steel", ((length * 0.7, v + t), (length, v + t)), 2.5, thickness_mm=1.8))  # noqa: PERF401
    return ObjectModel("cutlery", prims)


def umbrella(rng: np.random.Generator) -> ObjectModel:
    """Folded umbrella: aluminium/steel ribs and shaft in nylon canopy."""
    length = _u(rng, 220, 320)
    prims: list[Primitive] = [
        Textile(
            "nylon",
            rounded_rect(length * 0.85, 45, 15),
            30.0,
            variation=0.4,
            density_scale=0.08,
            seed=int(rng.integers(1 << 30)),
        ),
        Rod(_choice(rng, ("aluminium", "steel")), (-length / 2, 0), (length / 2, 0), 5.0, wall_mm=0.8),
        Rod("polyethylene", (-length / 2 - 60, 0), (-length / 2, 0), 14.0),
    ]
    for k in range(int(rng.integers(4, 9))):
        off = -12 + 24 * k / 8
        prims.append(Stroke("steel", ((-length * 0.4, off), (length * 0.45, off * 0.5)), 1.6))
    return ObjectModel("umbrella", prims)


CLUTTER: dict[str, tuple[Generator, float]] = {
    # kind: (generator, relative frequency)
    "clothes": (clothes, 3.0),
    "books": (book, 1.5),
    "shoes": (shoes, 0.8),
    "food": (food, 1.2),
    "bottle": (water_bottle, 0.8),
    "cable": (cable, 1.2),
    "electronics": (electronics, 1.2),
    "can": (can, 0.6),
    "tools": (tools, 0.8),
    "cosmetics": (cosmetics, 0.8),
    "toy": (toy, 0.6),
    "padding": (padding, 0.8),
    "cutlery": (cutlery, 0.4),
    "umbrella": (umbrella, 0.3),
}


def random_clutter(rng: np.random.Generator, emphasis: Mapping[str, float] | None = None) -> ObjectModel:
    """One benign object, kinds drawn by their frequency in :data:`CLUTTER` times ``emphasis[kind]`` (default 1).

    ``emphasis`` makes hard negatives (look-alikes of threats: food tins and dense boxes, bottles, cans,
    cosmetics, cutlery) more frequent in a training recipe; the draw uses the same random numbers either way.
    """
    kinds = list(CLUTTER)
    weights = np.array([CLUTTER[k][1] * (emphasis or {}).get(k, 1.0) for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    return CLUTTER[kind][0](rng)


def make_threat(name: str, rng: np.random.Generator) -> ObjectModel:
    try:
        generator = THREATS[name]
    except KeyError:
        raise KeyError(f"unknown threat class {name!r}; the library has {', '.join(THREATS)}") from None
    return generator(rng)
