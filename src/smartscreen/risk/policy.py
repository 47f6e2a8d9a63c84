"""The risk policy as versioned data: a YAML file validated into frozen pydantic models.

The policy names every threshold and score; :mod:`smartscreen.risk.engine` applies it.
Class names are checked against :mod:`smartscreen.domain.taxonomy` so a typo fails at load
time, not silently at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import ConfigError
from smartscreen.strict_yaml import load_yaml

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MODEL_THRESHOLD = "model"


class ClassRule(_Strict):
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["model"] = Field(
        description=(
            "Lowest detector score that counts; `model` = the operating threshold recorded in the model package by "
            "`smartscreen eval --record` (the score at its clean-parcel false-alarm target), so the line alarms where "
            "the model was evaluated."
        )
    )
    score: float = Field(ge=0.0, le=1.0, description="Risk a counted detection contributes.")
    always_alarm: bool = Field(default=False, description="A counted detection is an alarm on its own.")


class DeclaredMismatchRule(_Strict):
    score: float = Field(ge=0.0, le=1.0)
    keywords: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="class -> words in declared items that explain it"
    )


class SenderRiskRule(_Strict):
    listed_senders: frozenset[str] = frozenset()
    listed_score: float = Field(default=0.6, ge=0.0, le=1.0)
    alarm_ratio: float = Field(default=0.2, gt=0.0, le=1.0)
    min_history: int = Field(default=10, ge=1)
    history_score: float = Field(default=0.3, ge=0.0, le=1.0)
    unverified_score: float = Field(default=0.3, ge=0.0, le=1.0)


class RouteRiskRule(_Strict):
    listed_routes: frozenset[str] = frozenset()
    listed_dest_regions: frozenset[str] = frozenset()
    score: float = Field(default=0.3, ge=0.0, le=1.0)


class WeightRule(_Strict):
    tolerance_ratio: float = Field(default=0.6, gt=0.0)
    floor_g: float = Field(default=300.0, gt=0.0)
    score: float = Field(default=0.4, ge=0.0, le=1.0)


class ImpenetrableRule(_Strict):
    fraction: float = Field(default=0.03, gt=0.0, le=1.0)
    score: float = Field(default=0.55, ge=0.0, le=1.0)


class RiskPolicy(_Strict):
    """Root of a policy file."""

    version: str = Field(min_length=1, description="Stored with every decision.")
    description: str = ""
    alarm_score: float = Field(gt=0.0, le=1.0, description="Combined risk at or above which a parcel is an alarm.")
    classes: dict[str, ClassRule]
    declared_mismatch: DeclaredMismatchRule
    sender_risk: SenderRiskRule = Field(default_factory=SenderRiskRule)
    route_risk: RouteRiskRule = Field(default_factory=RouteRiskRule)
    weight: WeightRule = Field(default_factory=WeightRule)
    unknown_waybill_score: float = Field(default=0.55, ge=0.0, le=1.0)
    impenetrable: ImpenetrableRule = Field(default_factory=ImpenetrableRule)
    model_threshold_fallback: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Used for `threshold: model` when the model package records no operating threshold.",
    )

    @model_validator(mode="after")
    def _known_classes(self) -> RiskPolicy:
        unknown = sorted((set(self.classes) | set(self.declared_mismatch.keywords)) - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"unknown classes {unknown}; the taxonomy has {', '.join(CLASS_NAMES)}")
        return self

    def cutoff(self, rule: ClassRule) -> float:
        """The number a rule's detections are compared with (``model`` unbound: the fallback)."""
        return self.model_threshold_fallback if rule.threshold == MODEL_THRESHOLD else float(rule.threshold)

    @property
    def uses_model_threshold(self) -> bool:
        return any(rule.threshold == MODEL_THRESHOLD for rule in self.classes.values())

    def bind_model_threshold(self, threshold: float | None) -> RiskPolicy:
        """This policy with every ``threshold: model`` replaced by ``threshold`` (the fallback when None)."""
        value = self.model_threshold_fallback if threshold is None else threshold
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"a model operating threshold must be within 0-1, not {value}")
        classes = {
            name: rule.model_copy(update={"threshold": value}) if rule.threshold == MODEL_THRESHOLD else rule
            for name, rule in self.classes.items()
        }
        return self.model_copy(update={"classes": classes})

    def lowest_cutoff(self) -> float:
        """The lowest score any rule counts: a detector must keep detections down to it."""
        return min((self.cutoff(rule) for rule in self.classes.values()), default=1.0)

    def check_covers(self, class_names: tuple[str, ...], model_id: str, source: str) -> None:
        """Raise ConfigError when a detector class has no rule here: its detections would be ignored."""
        uncovered = sorted(set(class_names) - set(self.classes))
        if uncovered:
            raise ConfigError(
                f"the risk policy {source} has no rule for the model's classes {uncovered} ({model_id}): their "
                "detections would be ignored; add them under the policy's classes or use a model in the taxonomy"
            )


def parse_policy(text: str, source: str = "<policy>") -> RiskPolicy:
    """Validate policy YAML text; raises ConfigError naming the source and the bad fields."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a risk policy must be a mapping (version, alarm_score, classes, ...)")
    try:
        return RiskPolicy.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{source}: invalid risk policy: {problems}") from e


def load_policy(path: Path = DEFAULT_POLICY_PATH) -> RiskPolicy:
    """Read and validate a policy file (the shipped default when no path is given)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read risk policy {path}: {e.strerror}") from e
    return parse_policy(text, source=str(path))
