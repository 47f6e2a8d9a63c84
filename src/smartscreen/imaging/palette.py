"""Pseudo-colour palettes: the standard orange / green / blue convention and vendor-like variants.

A palette maps (Zeff, fused transmission m = sqrt(T_L * T_H)) to sRGB. Hue carries the material
class (orange organic, green inorganic or mixed, blue metal) with a smooth transition at the class
boundaries; saturation rises and brightness falls with attenuation (reference doc section 8, after
the AXIS colorizer). Variants change hue within each class band, saturation and brightness curves,
gamma and background tint, the way scanner vendors do, but never the hue meaning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

ZEFF_STEP = 0.25
ZEFF_BINS = 161  # Zeff 0 .. 40 in 0.25 steps: codes 0..160
M_BINS = 256
CODES = 256  # per-pixel material code: a Zeff bin, or one of the two special codes below
BACKGROUND_BIN = 255
IMPENETRABLE_BIN = 254


@dataclass(frozen=True, slots=True)
class Palette:
    """Parameters of one pseudo-colour rendering.

    Attributes:
        hues_deg: hue of organic, inorganic and metal (must stay orange-ish, green-ish, blue-ish).
        saturation: peak saturation per class.
        organic_max_z, metal_min_z: class boundaries in Zeff; ``transition_z`` is the half-width of the blend.
        saturation_power: S = sat * (1 - m^p); thin objects are pale.
        value_power: V = 1 - (1 - m)^q; thick objects are dark.
        gamma: applied to m first (brightness mapping).
        value_floor: darkest value of a penetrated pixel.
        background_rgb, impenetrable_rgb: air and "too dense" colours.
        low_weight: brightness uses ``m = exp(-(w * a_L + (1 - w) * a_H))``; 0.5 is the geometric mean of T_L and T_H.
        edge_gain: unsharp-mask gain on the brightness channel (vendor edge enhancement: thin dark outlines).
    """

    name: str = "standard"
    hues_deg: tuple[float, float, float] = (30.0, 120.0, 215.0)
    saturation: tuple[float, float, float] = (1.0, 0.9, 0.95)
    organic_max_z: float = 10.0
    metal_min_z: float = 18.0
    transition_z: float = 1.0
    saturation_power: float = 3.0
    value_power: float = 3.0
    gamma: float = 1.0
    value_floor: float = 0.0
    background_rgb: tuple[int, int, int] = (255, 255, 255)
    impenetrable_rgb: tuple[int, int, int] = (0, 0, 0)
    low_weight: float = 0.5
    edge_gain: float = 0.0

    def __post_init__(self) -> None:
        organic, inorganic, metal = self.hues_deg
        if not (10.0 <= organic <= 60.0 and 70.0 <= inorganic <= 150.0 and 185.0 <= metal <= 250.0):
            raise ValueError(
                f"palette {self.name!r}: hues {self.hues_deg} must keep their meaning "
                "(organic 10-60 deg, inorganic 70-150 deg, metal 185-250 deg)"
            )

    def replace(self, **changes: object) -> Palette:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def table(self) -> U8:
        """Colour table ``(CODES * M_BINS, 3)`` uint8 RGB, indexed by ``code * M_BINS + m_bin``."""
        return _table(self)

    def packed_table(self) -> npt.NDArray[np.uint32]:
        """The colour table packed as little-endian RGBA uint32 (one gather per pixel)."""
        return _packed(self)


PALETTES: dict[str, Palette] = {
    p.name: p
    for p in (
        Palette(),
        # warm, strongly saturated organics and deep blue metal (common on parcel scanners)
        Palette(
            name="warm",
            hues_deg=(24.0, 100.0, 222.0),
            saturation=(1.0, 0.95, 1.0),
            saturation_power=2.2,
            value_power=2.6,
            gamma=0.9,
            background_rgb=(250, 250, 250),
            low_weight=0.35,
            edge_gain=0.6,
        ),
        # pale yellow-olive organics, cyan-blue metal, soft contrast (subway-style scanners)
        Palette(
            name="pale",
            hues_deg=(45.0, 95.0, 200.0),
            saturation=(0.55, 0.7, 0.8),
            saturation_power=3.5,
            value_power=2.0,
            gamma=1.25,
            value_floor=0.08,
            background_rgb=(252, 252, 246),
            low_weight=0.3,
            edge_gain=0.3,
        ),
        # muted: tan/olive organics, grey-green inorganics, navy metal, light rendering (subway/airport style)
        Palette(
            name="muted",
            hues_deg=(38.0, 105.0, 218.0),
            saturation=(0.45, 0.5, 0.65),
            saturation_power=2.0,
            value_power=1.6,
            gamma=1.0,
            value_floor=0.05,
            background_rgb=(250, 250, 248),
            low_weight=0.3,
            edge_gain=0.5,
        ),
        # high-contrast with green inorganics and violet-blue metals
        Palette(
            name="contrast",
            hues_deg=(28.0, 130.0, 232.0),
            saturation=(0.95, 1.0, 0.9),
            saturation_power=2.5,
            value_power=4.0,
            gamma=1.1,
            background_rgb=(246, 248, 250),
            impenetrable_rgb=(10, 10, 20),
            low_weight=0.4,
            edge_gain=1.0,
        ),
    )
}
DEFAULT_PALETTE = PALETTES["standard"]


def random_palette(rng: np.random.Generator, jitter: float = 1.0) -> Palette:
    """A vendor-like palette: one of :data:`PALETTES` with jittered hues, curves, gamma and boundaries (+-1 Z)."""
    base = list(PALETTES.values())[int(rng.integers(len(PALETTES)))]
    if jitter <= 0:
        return base
    o, i, m = base.hues_deg

    def j(value: float, spread: float, lo: float, hi: float) -> float:
        return float(np.clip(value + rng.uniform(-spread, spread) * jitter, lo, hi))

    tint = int(rng.integers(0, 8))
    return base.replace(
        name=f"{base.name}~",
        hues_deg=(j(o, 6.0, 12.0, 55.0), j(i, 12.0, 75.0, 145.0), j(m, 10.0, 190.0, 245.0)),
        saturation=(
            j(base.saturation[0], 0.15, 0.4, 1.0),
            j(base.saturation[1], 0.15, 0.4, 1.0),
            j(base.saturation[2], 0.15, 0.4, 1.0),
        ),
        organic_max_z=j(base.organic_max_z, 1.0, 8.5, 11.5),
        metal_min_z=j(base.metal_min_z, 1.0, 16.5, 19.5),
        saturation_power=j(base.saturation_power, 0.8, 1.5, 5.0),
        value_power=j(base.value_power, 0.8, 1.5, 5.0),
        gamma=j(base.gamma, 0.2, 0.6, 1.6),
        background_rgb=(255 - tint, 255 - tint, 255 - int(rng.integers(0, 10))),
        low_weight=j(base.low_weight, 0.15, 0.2, 0.6),
        edge_gain=j(base.edge_gain, 0.6, 0.0, 1.5),
    )


def _hue_for_z(palette: Palette, z: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Hue (degrees) and peak saturation with smooth blends across the two class boundaries."""
    h_o, h_i, h_m = palette.hues_deg
    s_o, s_i, s_m = palette.saturation
    w = max(palette.transition_z, 1e-3)
    t1 = np.clip((z - (palette.organic_max_z - w)) / (2 * w), 0.0, 1.0)
    t2 = np.clip((z - (palette.metal_min_z - w)) / (2 * w), 0.0, 1.0)
    hue = h_o + (h_i - h_o) * t1 + (h_m - h_i) * t2
    sat = s_o + (s_i - s_o) * t1 + (s_m - s_i) * t2
    return hue, sat


def _hsv_to_rgb(
    h: npt.NDArray[np.float64], s: npt.NDArray[np.float64], v: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Vectorised HSV -> RGB (all in [0, 1]), same result as :func:`colorsys.hsv_to_rgb`."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


@lru_cache(maxsize=64)
def _table(palette: Palette) -> U8:
    z = np.arange(ZEFF_BINS, dtype=np.float64) * ZEFF_STEP
    m = (np.arange(M_BINS) + 0.5) / M_BINS
    mg = m**palette.gamma
    hue, sat_peak = _hue_for_z(palette, z)
    table = np.empty((CODES, M_BINS, 3), dtype=np.uint8)
    table[ZEFF_BINS:] = palette.background_rgb  # unused codes
    s_curve = 1.0 - mg**palette.saturation_power
    v_curve = palette.value_floor + (1.0 - palette.value_floor) * (1.0 - (1.0 - mg) ** palette.value_power)
    h = np.repeat((hue / 360.0)[:, None], M_BINS, axis=1)
    sv = sat_peak[:, None] * s_curve[None, :]
    vv = np.repeat(v_curve[None, :], ZEFF_BINS, axis=0)
    table[:ZEFF_BINS] = np.rint(_hsv_to_rgb(h, sv, vv) * 255.0).astype(np.uint8)
    # blend the top of the brightness range into the background colour so thin edges fade into paper
    table[BACKGROUND_BIN, :] = palette.background_rgb
    table[IMPENETRABLE_BIN, :] = palette.impenetrable_rgb
    bg = np.asarray(palette.background_rgb, dtype=np.float64)
    fade = np.clip((m - 0.9) / 0.1, 0.0, 1.0)[None, :, None]
    table[:ZEFF_BINS] = np.rint(table[:ZEFF_BINS] * (1 - fade) + bg[None, None, :] * fade).astype(np.uint8)
    flat = table.reshape(-1, 3)
    flat.setflags(write=False)
    return flat


@lru_cache(maxsize=64)
def _packed(palette: Palette) -> npt.NDArray[np.uint32]:
    rgb = _table(palette).astype(np.uint32)
    packed: npt.NDArray[np.uint32] = np.asarray(
        rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16) | np.uint32(255 << 24), dtype=np.uint32
    )
    packed.setflags(write=False)
    return packed
