"""Risk policy: versioned YAML data and the pure functions that turn a parcel's facts into a decision."""

from smartscreen.risk.engine import FAULT_CODES, RiskInputs, assess, decide, evaluate
from smartscreen.risk.policy import DEFAULT_POLICY_PATH, RiskPolicy, load_policy, parse_policy

__all__ = [
    "DEFAULT_POLICY_PATH",
    "FAULT_CODES",
    "RiskInputs",
    "RiskPolicy",
    "assess",
    "decide",
    "evaluate",
    "load_policy",
    "parse_policy",
]
