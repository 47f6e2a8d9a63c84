"""Class-name maps: a source dataset's class names -> the project taxonomy.

A map is a YAML file (see ``datasets/class-maps/``)::

    source: pidray
    classes:          # source name -> taxonomy name (smartscreen.domain.taxonomy.CLASS_NAMES)
      Baton: baton
      Gun: gun
    ignore:           # source classes deliberately outside the taxonomy: their boxes are dropped
      - Laptop        #   and counted as "ignored" in the report (never silently)

Names are matched case-insensitively with spaces and hyphens treated as underscores, so
``Portable_Charger_1``, ``portable charger 1`` and ``PORTABLE-CHARGER-1`` are one name.
Any class neither mapped nor ignored is *unknown*: the converter reports it with the files it
appears in and, by default, leaves those images out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import DatasetError
from smartscreen.strict_yaml import load_yaml


def normalise_name(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


class ClassMapFile(BaseModel):
    """The YAML file, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="", description="dataset the map is for (informational)")
    classes: dict[str, str] = Field(default_factory=dict, description="source class name -> taxonomy class name")
    ignore: list[str] = Field(default_factory=list, description="source classes deliberately dropped")

    @field_validator("classes")
    @classmethod
    def _targets_in_taxonomy(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted({t for t in value.values() if t not in CLASS_NAMES})
        if bad:
            raise ValueError(f"target classes {bad} are not in the taxonomy ({', '.join(CLASS_NAMES)})")
        return value


class Outcome(StrEnum):
    MAPPED = "mapped"
    IGNORED = "ignored"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    target: str = ""  # taxonomy name when MAPPED


@dataclass(frozen=True, slots=True)
class ClassMap:
    """Resolves source class names to taxonomy names."""

    source: str
    mapping: tuple[tuple[str, str], ...]  # (normalised source name, taxonomy name)
    ignored: frozenset[str]  # normalised source names

    @classmethod
    def identity(cls) -> ClassMap:
        """The taxonomy's own names (YOLO datasets written by smartscreen, synth output)."""
        return cls(
            source="smartscreen", mapping=tuple((normalise_name(n), n) for n in CLASS_NAMES), ignored=frozenset()
        )

    @classmethod
    def from_file(cls, path: Path) -> ClassMap:
        try:
            raw = load_yaml(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DatasetError(f"cannot read class map {path}: {e}") from e
        except yaml.YAMLError as e:
            raise DatasetError(f"class map {path} is not valid YAML: {e}") from e
        try:
            parsed = ClassMapFile.model_validate(raw if raw is not None else {})
        except ValidationError as e:
            raise DatasetError(f"class map {path} is invalid: {e}") from e
        return cls.from_model(parsed)

    @classmethod
    def from_model(cls, parsed: ClassMapFile) -> ClassMap:
        mapping: dict[str, str] = {}
        for source_name, target in parsed.classes.items():
            key = normalise_name(source_name)
            if key in mapping and mapping[key] != target:
                raise DatasetError(f"class map lists {source_name!r} twice with different targets")
            mapping[key] = target
        ignored = frozenset(normalise_name(n) for n in parsed.ignore)
        both = sorted(ignored & mapping.keys())
        if both:
            raise DatasetError(f"class map both maps and ignores {both}")
        return cls(source=parsed.source, mapping=tuple(sorted(mapping.items())), ignored=ignored)

    def resolve(self, source_name: str) -> Resolution:
        key = normalise_name(source_name)
        for name, target in self.mapping:
            if name == key:
                return Resolution(Outcome.MAPPED, target)
        if key in self.ignored:
            return Resolution(Outcome.IGNORED)
        return Resolution(Outcome.UNKNOWN)
