"""Pure risk functions: parcel facts + policy -> :class:`RiskAssessment` -> :class:`Decision`.

No I/O, no clock: the caller passes the decision time. Faults (no detector result, incomplete
scan, no-read, multi-read, association mismatch, waybill service down) always give a
fail-closed REJECT; nothing here can turn a missing input into a CLEAR.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartscreen.domain.decision import Decision, Reason, ReasonCode, RiskAssessment, Route
from smartscreen.domain.detections import Detections
from smartscreen.domain.waybill import BarcodeMatch, Waybill
from smartscreen.risk.policy import RiskPolicy

# reasons that mean "we could not judge this parcel": always REJECT, marked fail-closed
FAULT_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.DETECTOR_ERROR,
        ReasonCode.INCOMPLETE_SCAN,
        ReasonCode.NO_READ,
        ReasonCode.MULTI_READ,
        ReasonCode.BARCODE_MISMATCH,
        ReasonCode.WAYBILL_SERVICE_ERROR,
        ReasonCode.DEADLINE_MISSED,
        ReasonCode.GATE_LINK_DOWN,
        ReasonCode.INTERNAL_ERROR,
    }
)

_BARCODE_FAULTS: dict[BarcodeMatch, ReasonCode] = {
    BarcodeMatch.NO_READ: ReasonCode.NO_READ,
    BarcodeMatch.MULTI_READ: ReasonCode.MULTI_READ,
    BarcodeMatch.MISMATCH: ReasonCode.BARCODE_MISMATCH,
}


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """Everything the policy judges about one parcel.

    Attributes:
        detections: the detector's result, or None when it failed (then ``detector_error`` says why).
        barcode: outcome of associating upstream barcode reads with the scan.
        tracking_no: the associated tracking number ("" unless ``barcode`` is MATCHED).
        waybill: the looked-up waybill, None when unknown or when the lookup failed.
        waybill_error: non-empty when the waybill service could not answer.
        scan_complete: False when lines are missing or the parcel's end was not seen.
        xray_mass_g: mass estimated from the X-ray attenuation, None when unavailable.
        impenetrable_fraction: share of the parcel's pixels too dense to classify.
    """

    parcel_id: str
    detections: Detections | None
    barcode: BarcodeMatch
    detector_error: str = ""
    tracking_no: str = ""
    waybill: Waybill | None = None
    waybill_error: str = ""
    scan_complete: bool = True
    scan_detail: str = ""
    xray_mass_g: float | None = None
    impenetrable_fraction: float = 0.0


def _declared_text(waybill: Waybill | None) -> str:
    if waybill is None:
        return ""
    return " ".join(f"{item.name} {item.category_code}" for item in waybill.declared_items).lower()


def _detection_reasons(inputs: RiskInputs, policy: RiskPolicy) -> list[Reason]:
    reasons: list[Reason] = []
    if inputs.detections is None:
        detail = inputs.detector_error or "no detector result"
        return [Reason(ReasonCode.DETECTOR_ERROR, detail[:200], 1.0)]
    declared = _declared_text(inputs.waybill)
    mismatch = policy.declared_mismatch
    for name, best in sorted(inputs.detections.max_score_by_class().items()):
        rule = policy.classes.get(name)
        if rule is None or best < (cutoff := policy.cutoff(rule)):
            continue
        if rule.always_alarm:
            reasons.append(Reason(ReasonCode.PROHIBITED_ITEM, f"{name} score {best:.2f}", rule.score))
            continue
        # restricted: contribution grows with confidence above the threshold
        span = max(1.0 - cutoff, 1e-6)
        weight = 0.5 + 0.5 * min(max((best - cutoff) / span, 0.0), 1.0)
        reasons.append(Reason(ReasonCode.RESTRICTED_ITEM, f"{name} score {best:.2f}", rule.score * weight))
        keywords = mismatch.keywords.get(name, ())
        if inputs.waybill is not None and not any(k.lower() in declared for k in keywords):
            reasons.append(
                Reason(
                    ReasonCode.DECLARED_MISMATCH,
                    f"{name} seen, not declared ({len(inputs.waybill.declared_items)} declared items)",
                    mismatch.score,
                )
            )
    return reasons


def _waybill_reasons(inputs: RiskInputs, policy: RiskPolicy) -> list[Reason]:
    fault = _BARCODE_FAULTS.get(inputs.barcode)
    if fault is not None:
        return [Reason(fault, f"barcode association: {inputs.barcode.value}", 1.0)]
    if inputs.waybill_error:
        return [Reason(ReasonCode.WAYBILL_SERVICE_ERROR, inputs.waybill_error[:200], 1.0)]
    waybill = inputs.waybill
    if waybill is None:
        return [Reason(ReasonCode.UNKNOWN_WAYBILL, "tracking number not found", policy.unknown_waybill_score)]
    reasons: list[Reason] = []
    sender = policy.sender_risk
    if waybill.sender_id and waybill.sender_id in sender.listed_senders:
        reasons.append(Reason(ReasonCode.SENDER_RISK, "sender on risk list", sender.listed_score))
    if waybill.sender_prior_parcels >= sender.min_history:
        ratio = waybill.sender_prior_alarms / waybill.sender_prior_parcels
        if ratio >= sender.alarm_ratio:
            reasons.append(Reason(ReasonCode.SENDER_RISK, f"sender alarm ratio {ratio:.2f}", sender.history_score))
    if not waybill.real_name_verified:
        reasons.append(Reason(ReasonCode.SENDER_RISK, "sender not real-name verified", sender.unverified_score))
    route = policy.route_risk
    if (waybill.route_label and waybill.route_label in route.listed_routes) or (
        waybill.dest_region_code and waybill.dest_region_code in route.listed_dest_regions
    ):
        reasons.append(Reason(ReasonCode.ROUTE_RISK, "route or destination on risk list", route.score))
    reference_g = waybill.measured_weight_g if waybill.measured_weight_g is not None else waybill.declared_weight_g
    if inputs.xray_mass_g is not None and reference_g is not None:
        rule = policy.weight
        ratio = abs(inputs.xray_mass_g - reference_g) / max(float(reference_g), rule.floor_g)
        if ratio > rule.tolerance_ratio:
            detail = f"x-ray mass {inputs.xray_mass_g:.0f} g vs waybill {reference_g} g"
            reasons.append(Reason(ReasonCode.WEIGHT_MISMATCH, detail, rule.score))
    return reasons


def _scan_reasons(inputs: RiskInputs, policy: RiskPolicy) -> list[Reason]:
    reasons: list[Reason] = []
    if not inputs.scan_complete:
        reasons.append(Reason(ReasonCode.INCOMPLETE_SCAN, inputs.scan_detail or "scan incomplete", 1.0))
    rule = policy.impenetrable
    if inputs.impenetrable_fraction >= rule.fraction:
        detail = f"{inputs.impenetrable_fraction:.1%} of the parcel impenetrable"
        reasons.append(Reason(ReasonCode.IMPENETRABLE_REGION, detail, rule.score))
    return reasons


def assess(inputs: RiskInputs, policy: RiskPolicy) -> RiskAssessment:
    """Collect every reason and combine their scores (noisy-or: 1 - prod(1 - s))."""
    reasons = _scan_reasons(inputs, policy) + _detection_reasons(inputs, policy) + _waybill_reasons(inputs, policy)
    clear_probability = 1.0
    for reason in reasons:
        clear_probability *= 1.0 - reason.score
    score = min(max(1.0 - clear_probability, 0.0), 1.0)
    return RiskAssessment(
        parcel_id=inputs.parcel_id, risk_score=score, reasons=tuple(reasons), policy_version=policy.version
    )


def decide(assessment: RiskAssessment, policy: RiskPolicy, *, review_routing: bool, at_ns: int) -> Decision:
    """Route a parcel: faults REJECT (fail-closed); alarms REJECT or REVIEW; otherwise CLEAR."""
    codes = set(assessment.reason_codes)
    faults = codes & FAULT_CODES
    if faults:
        fault_reasons = tuple(r for r in assessment.reasons if r.code in FAULT_CODES)
        others = tuple(r for r in assessment.reasons if r.code not in FAULT_CODES)
        return Decision(
            parcel_id=assessment.parcel_id,
            route=Route.REJECT,
            reasons=fault_reasons + others,
            policy_version=assessment.policy_version,
            decided_at_ns=at_ns,
            fail_closed=True,
        )
    alarm = ReasonCode.PROHIBITED_ITEM in codes or assessment.risk_score >= policy.alarm_score
    if alarm:
        route = Route.REVIEW if review_routing else Route.REJECT
        reasons = tuple(sorted(assessment.reasons, key=lambda r: -r.score))
    else:
        route = Route.CLEAR
        reasons = assessment.reasons
    return Decision(
        parcel_id=assessment.parcel_id,
        route=route,
        reasons=reasons,
        policy_version=assessment.policy_version,
        decided_at_ns=at_ns,
    )


def evaluate(
    inputs: RiskInputs, policy: RiskPolicy, *, review_routing: bool, at_ns: int
) -> tuple[RiskAssessment, Decision]:
    """:func:`assess` then :func:`decide`."""
    assessment = assess(inputs, policy)
    return assessment, decide(assessment, policy, review_routing=review_routing, at_ns=at_ns)
