"""Material library and mass-attenuation coefficients from xraydb.

Every coefficient comes from ``xraydb.mu_elam`` (total cross-section including coherent
scattering, right for narrow-beam transmission). Mixtures use the mixture rule
``(mu/rho) = sum_i w_i (mu/rho)_i`` with element mass fractions ``w_i``. xraydb takes
energies in eV; this module speaks keV.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import xraydb

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Material:
    """A homogeneous material: a mixture of formulas by mass fraction, and a density.

    Attributes:
        name: identifier used in scene descriptions and metadata.
        parts: ``(formula, mass fraction)`` pairs; fractions are normalised to sum to 1.
        density_g_cm3: bulk density (only used to turn thickness into areal density).
        zeff: power-law effective atomic number (exponent 2.94), for reference and tests.
    """

    name: str
    parts: tuple[tuple[str, float], ...]
    density_g_cm3: float

    def element_fractions(self) -> dict[str, float]:
        return _element_fractions(self.parts)

    @property
    def zeff(self) -> float:
        fractions = self.element_fractions()
        electrons = {el: w * xraydb.atomic_number(el) / xraydb.atomic_mass(el) for el, w in fractions.items()}
        total = sum(electrons.values())
        return float(
            sum((e / total) * float(xraydb.atomic_number(el)) ** 2.94 for el, e in electrons.items()) ** (1 / 2.94)
        )


def _element_fractions(parts: tuple[tuple[str, float], ...]) -> dict[str, float]:
    return dict(_element_fractions_cached(parts))


@lru_cache(maxsize=256)
def _element_fractions_cached(parts: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    total_part = sum(w for _, w in parts)
    out: dict[str, float] = {}
    for formula, weight in parts:
        counts = xraydb.chemparse(formula)
        masses = {el: n * xraydb.atomic_mass(el) for el, n in counts.items()}
        formula_mass = sum(masses.values())
        for el, m in masses.items():
            out[el] = out.get(el, 0.0) + (weight / total_part) * m / formula_mass
    return tuple(out.items())


# The library. Compositions are mass fractions; approximate where marked in RAW_FORMAT/README docs.
_LIBRARY: tuple[Material, ...] = (
    Material("cellulose", (("C6H10O5", 1.0),), 1.50),  # paper, cardboard, cotton, wood
    Material("polyethylene", (("C2H4", 1.0),), 0.94),  # films, rubber-like soles, toys
    Material("pet", (("C10H8O4", 1.0),), 1.38),  # bottles, polyester textiles
    Material("nylon", (("C6H11NO", 1.0),), 1.14),  # textiles, leather stand-in, grips
    Material("water", (("H2O", 1.0),), 1.00),
    Material("sucrose", (("C12H22O11", 1.0),), 1.59),  # dry food
    Material("ethanol", (("C2H6O", 1.0),), 0.79),  # flammable liquids, spirits
    Material("petrol", (("C8H18", 1.0),), 0.74),
    Material("butane", (("C4H10", 1.0),), 0.58),  # lighter fuel
    Material("pvc", (("C2H3Cl", 1.0),), 1.38),  # cable insulation
    Material("black_powder", (("KNO3", 0.75), ("C", 0.15), ("S", 0.10)), 1.70),  # firecracker charge
    Material("glass", (("SiO2", 0.73), ("Na2O", 0.14), ("CaO", 0.09), ("MgO", 0.04)), 2.50),
    # FR4 circuit board: E-glass fibre in brominated epoxy
    Material(
        "fr4",
        (("SiO2", 0.33), ("CaO", 0.11), ("Al2O3", 0.08), ("B2O3", 0.04), ("C18H20O3", 0.40), ("Br", 0.04)),
        1.85,
    ),
    Material("silicon", (("Si", 1.0),), 2.33),
    Material("aluminium", (("Al", 1.0),), 2.70),
    Material("steel", (("Fe", 0.98), ("Mn", 0.01), ("C", 0.01)), 7.87),
    Material("copper", (("Cu", 1.0),), 8.96),
    Material("brass", (("Cu", 0.70), ("Zn", 0.30)), 8.50),
    Material("lead", (("Pb", 1.0),), 11.35),
    # Li-ion jelly roll without its can (reference LCO 18650 mass split less the can)
    Material(
        "li_ion_core",
        (
            ("LiCoO2", 0.27),
            ("C", 0.16),
            ("Cu", 0.10),
            ("Al", 0.06),
            ("C3H4O3", 0.12),
            ("LiPF6", 0.02),
            ("C2H4", 0.03),
            ("C2H2F2", 0.02),
        ),
        2.60,
    ),
    Material("iron", (("Fe", 1.0),), 7.874),  # pure element, for step wedges and tests
)

MATERIALS: dict[str, Material] = {m.name: m for m in _LIBRARY}
MATERIAL_NAMES: tuple[str, ...] = tuple(m.name for m in _LIBRARY)


def material(name: str) -> Material:
    """Look a material up by name; raises KeyError naming the library."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; the library has {', '.join(MATERIAL_NAMES)}") from None


@lru_cache(maxsize=512)
def _mu_element(element: str, energies_key: tuple[float, ...], kind: str) -> FloatArray:
    energies_ev = np.asarray(energies_key, dtype=np.float64) * 1000.0
    return np.asarray(xraydb.mu_elam(element, energies_ev, kind=kind), dtype=np.float64)


def mass_attenuation(composition: Material | str, energies_kev: npt.ArrayLike, kind: str = "total") -> FloatArray:
    """(mu/rho) in cm^2/g of a material (name or :class:`Material`) or a formula at the given energies (keV).

    ``composition`` may also be an element symbol or chemical formula (e.g. ``"H2O"``, ``"CsI"``).
    """
    energies = np.atleast_1d(np.asarray(energies_kev, dtype=np.float64))
    if isinstance(composition, Material):
        fractions = composition.element_fractions()
    elif composition in MATERIALS:
        fractions = MATERIALS[composition].element_fractions()
    else:
        fractions = _element_fractions(((composition, 1.0),))
    key = tuple(float(e) for e in energies)
    out = np.zeros_like(energies)
    for element, weight in fractions.items():
        out += weight * _mu_element(element, key, kind)
    return out


def element_mass_attenuation(z: int, energies_kev: npt.ArrayLike) -> FloatArray:
    """(mu/rho) in cm^2/g of the element with atomic number ``z``."""
    symbol = str(xraydb.atomic_symbol(z))
    energies = np.atleast_1d(np.asarray(energies_kev, dtype=np.float64))
    return _mu_element(symbol, tuple(float(e) for e in energies), "total").copy()
