"""The project's threat taxonomy: the class names every dataset is mapped to.

The 12 PIDray classes plus lithium battery cells, flammable-liquid containers and
firecrackers. Class ids are the index in :data:`THREAT_CLASSES` and are stable:
model packages, datasets and the journal all use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ThreatCategory(StrEnum):
    WEAPON = "weapon"  # firearms and ammunition
    BLADE = "blade"
    BLUNT = "blunt"
    TOOL = "tool"
    RESTRAINT = "restraint"
    BATTERY = "battery"
    FLAMMABLE = "flammable"
    EXPLOSIVE = "explosive"
    PRESSURISED = "pressurised"


@dataclass(frozen=True, slots=True)
class ThreatClass:
    name: str
    category: ThreatCategory
    prohibited: bool  # True: never allowed in the post; False: restricted (declared and packed correctly is fine)


THREAT_CLASSES: tuple[ThreatClass, ...] = (
    ThreatClass("baton", ThreatCategory.BLUNT, True),
    ThreatClass("pliers", ThreatCategory.TOOL, False),
    ThreatClass("hammer", ThreatCategory.BLUNT, False),
    ThreatClass("powerbank", ThreatCategory.BATTERY, False),
    ThreatClass("scissors", ThreatCategory.BLADE, False),
    ThreatClass("wrench", ThreatCategory.TOOL, False),
    ThreatClass("gun", ThreatCategory.WEAPON, True),
    ThreatClass("bullet", ThreatCategory.WEAPON, True),
    ThreatClass("sprayer", ThreatCategory.PRESSURISED, True),
    ThreatClass("handcuffs", ThreatCategory.RESTRAINT, True),
    ThreatClass("knife", ThreatCategory.BLADE, True),
    ThreatClass("lighter", ThreatCategory.FLAMMABLE, True),
    ThreatClass("lithium_battery", ThreatCategory.BATTERY, False),
    ThreatClass("flammable_liquid", ThreatCategory.FLAMMABLE, True),
    ThreatClass("firecracker", ThreatCategory.EXPLOSIVE, True),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in THREAT_CLASSES)
PROHIBITED_CLASS_NAMES: frozenset[str] = frozenset(c.name for c in THREAT_CLASSES if c.prohibited)


def class_id(name: str) -> int:
    """Index of a taxonomy class; raises KeyError naming the valid classes."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown class {name!r}; the taxonomy has {', '.join(CLASS_NAMES)}") from None
