from __future__ import annotations

import numpy as np
import pytest
import yaml

from smartscreen.domain import BarcodeMatch, DeclaredItem, Detections, ReasonCode, Route, Waybill
from smartscreen.domain.taxonomy import CLASS_NAMES, class_id
from smartscreen.errors import ConfigError
from smartscreen.risk import FAULT_CODES, RiskInputs, evaluate, load_policy, parse_policy

POLICY = load_policy()


def dets(*pairs: tuple[str, float]) -> Detections:
    n = len(pairs)
    return Detections(
        xyxy=np.tile(np.array([[10, 10, 50, 60]], np.float32), (n, 1)),
        scores=np.array([s for _, s in pairs], np.float32),
        class_ids=np.array([class_id(c) for c, _ in pairs], np.int32),
        class_names=CLASS_NAMES,
        model_id="test@1",
    )


def waybill(**kw: object) -> Waybill:
    base: dict[str, object] = {
        "tracking_no": "SF1023574626292",
        "carrier_code": "SF",
        "declared_items": (DeclaredItem("clothes", "apparel"),),
        "declared_weight_g": 800,
        "sender_id": "acct-1",
    }
    base.update(kw)
    return Waybill(**base)  # type: ignore[arg-type]


def inputs(**kw: object) -> RiskInputs:
    base: dict[str, object] = {
        "parcel_id": "L1-1",
        "detections": dets(),
        "barcode": BarcodeMatch.MATCHED,
        "tracking_no": "SF1023574626292",
        "waybill": waybill(),
    }
    base.update(kw)
    return RiskInputs(**base)  # type: ignore[arg-type]


def run(**kw: object) -> tuple[Route, set[ReasonCode], bool]:
    _, decision = evaluate(inputs(**kw), POLICY, review_routing=False, at_ns=1)
    return decision.route, set(r.code for r in decision.reasons), decision.fail_closed


def test_clean_parcel_clears() -> None:
    route, codes, fail_closed = run()
    assert route is Route.CLEAR and not codes and not fail_closed


def test_prohibited_item_rejects_and_review_routing_reviews() -> None:
    route, codes, _ = run(detections=dets(("gun", 0.9)))
    assert route is Route.REJECT and ReasonCode.PROHIBITED_ITEM in codes
    _, decision = evaluate(inputs(detections=dets(("knife", 0.8))), POLICY, review_routing=True, at_ns=5)
    assert decision.route is Route.REVIEW and not decision.fail_closed
    assert decision.policy_version == POLICY.version and decision.decided_at_ns == 5


def test_below_threshold_detection_is_ignored() -> None:
    route, codes, _ = run(detections=dets(("gun", 0.1)))
    assert route is Route.CLEAR and not codes


def test_undeclared_lithium_battery_is_a_mismatch_alarm() -> None:
    route, codes, _ = run(detections=dets(("lithium_battery", 0.8)))
    assert route is Route.REJECT
    assert {ReasonCode.RESTRICTED_ITEM, ReasonCode.DECLARED_MISMATCH} <= codes


def test_declared_battery_clears() -> None:
    wb = waybill(declared_items=(DeclaredItem("mobile phone with lithium battery", "3C"),))
    route, codes, _ = run(detections=dets(("lithium_battery", 0.8)), waybill=wb)
    assert route is Route.CLEAR and codes == {ReasonCode.RESTRICTED_ITEM}


@pytest.mark.parametrize(
    ("barcode", "code"),
    [
        (BarcodeMatch.NO_READ, ReasonCode.NO_READ),
        (BarcodeMatch.MULTI_READ, ReasonCode.MULTI_READ),
        (BarcodeMatch.MISMATCH, ReasonCode.BARCODE_MISMATCH),
    ],
)
def test_barcode_faults_fail_closed(barcode: BarcodeMatch, code: ReasonCode) -> None:
    route, codes, fail_closed = run(barcode=barcode, waybill=None, tracking_no="")
    assert route is Route.REJECT and code in codes and fail_closed


def test_faults_fail_closed_even_with_review_routing() -> None:
    for kw in (
        {"detections": None, "detector_error": "stalled"},
        {"scan_complete": False, "scan_detail": "40 missing lines"},
        {"waybill": None, "waybill_error": "timeout"},
    ):
        _, decision = evaluate(inputs(**kw), POLICY, review_routing=True, at_ns=1)
        assert decision.route is Route.REJECT and decision.fail_closed
        assert {r.code for r in decision.reasons} & FAULT_CODES


def test_unknown_waybill_alarms() -> None:
    route, codes, fail_closed = run(waybill=None)
    assert route is Route.REJECT and codes == {ReasonCode.UNKNOWN_WAYBILL} and not fail_closed


def test_weight_mismatch_alone_does_not_alarm_but_adds_risk() -> None:
    assessment, decision = evaluate(inputs(xray_mass_g=4000.0), POLICY, review_routing=False, at_ns=1)
    assert ReasonCode.WEIGHT_MISMATCH in assessment.reason_codes
    assert decision.route is Route.CLEAR and 0 < assessment.risk_score < POLICY.alarm_score
    close, _ = evaluate(inputs(xray_mass_g=750.0), POLICY, review_routing=False, at_ns=1)
    assert not close.reasons


def test_risk_adds_up_to_an_alarm() -> None:
    # weight mismatch + unverified sender + scissors: each below the alarm score, together above
    wb = waybill(real_name_verified=False)
    assessment, decision = evaluate(
        inputs(xray_mass_g=4000.0, waybill=wb, detections=dets(("scissors", 0.9))),
        POLICY,
        review_routing=False,
        at_ns=1,
    )
    assert assessment.risk_score >= POLICY.alarm_score and decision.route is Route.REJECT


def test_sender_and_route_lists() -> None:
    data = POLICY.model_dump(mode="json")
    data["sender_risk"]["listed_senders"] = ["bad-acct"]
    data["route_risk"]["listed_routes"] = ["771AG"]
    data["alarm_score"] = 0.25
    policy = parse_policy(yaml.safe_dump(data), "custom")
    _, d1 = evaluate(inputs(waybill=waybill(sender_id="bad-acct")), policy, review_routing=False, at_ns=1)
    assert d1.route is Route.REJECT and {r.code for r in d1.reasons} == {ReasonCode.SENDER_RISK}
    _, d2 = evaluate(inputs(waybill=waybill(route_label="771AG")), policy, review_routing=False, at_ns=1)
    assert d2.route is Route.REJECT and {r.code for r in d2.reasons} == {ReasonCode.ROUTE_RISK}
    history = waybill(sender_prior_parcels=20, sender_prior_alarms=8)
    a3, _ = evaluate(inputs(waybill=history), policy, review_routing=False, at_ns=1)
    assert ReasonCode.SENDER_RISK in a3.reason_codes


def test_impenetrable_region_alarms() -> None:
    route, codes, _ = run(impenetrable_fraction=0.2)
    assert route is Route.REJECT and ReasonCode.IMPENETRABLE_REGION in codes


def test_policy_rejects_unknown_class_and_bad_yaml() -> None:
    with pytest.raises(ConfigError, match="unknown classes"):
        parse_policy(
            "version: x\nalarm_score: 0.5\nclasses: {bazooka: {threshold: 0.5, score: 1}}\n"
            "declared_mismatch: {score: 0.5}\n"
        )
    with pytest.raises(ConfigError, match="alarm_score"):
        parse_policy("version: x\nalarm_score: 2\nclasses: {}\ndeclared_mismatch: {score: 0.5}\n")
    with pytest.raises(ConfigError, match="mapping"):
        parse_policy("- a\n")


def test_reason_details_carry_no_personal_data() -> None:
    from smartscreen.domain import PersonalData

    wb = waybill(pii=PersonalData(sender_name="张三", sender_phone="13800138000"), real_name_verified=False)
    _, decision = evaluate(
        inputs(waybill=wb, detections=dets(("lithium_battery", 0.9))), POLICY, review_routing=False, at_ns=1
    )
    text = " ".join(r.detail for r in decision.reasons)
    assert "张三" not in text and "13800138000" not in text


def test_model_threshold_rules_follow_the_threshold_bound_from_the_package() -> None:
    def route(policy: object, score: float) -> Route:
        _, decision = evaluate(inputs(detections=dets(("gun", score))), policy, review_routing=False, at_ns=1)  # type: ignore[arg-type]
        return decision.route

    assert POLICY.uses_model_threshold and POLICY.classes["gun"].threshold == "model"
    fallback = POLICY.model_threshold_fallback
    assert route(POLICY, fallback - 0.01) is Route.CLEAR and route(POLICY, fallback + 0.01) is Route.REJECT
    bound = POLICY.bind_model_threshold(0.2)
    assert not bound.uses_model_threshold and bound.classes["gun"].threshold == 0.2
    assert route(bound, 0.21) is Route.REJECT and route(bound, 0.19) is Route.CLEAR
    # numeric rules are left alone; the lowest counted score is what the detector must keep
    assert bound.classes["lithium_battery"] == POLICY.classes["lithium_battery"]
    assert bound.lowest_cutoff() == 0.2 and POLICY.lowest_cutoff() == fallback
    assert POLICY.bind_model_threshold(None).classes["knife"].threshold == fallback
    with pytest.raises(ConfigError, match="within 0-1"):
        POLICY.bind_model_threshold(1.5)


def test_a_threshold_that_is_neither_a_number_nor_model_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"classes\.gun\.threshold"):
        parse_policy(
            "version: x\nalarm_score: 0.5\nclasses: {gun: {threshold: modle, score: 1}}\ndeclared_mismatch: {score: 0.5}\n"
        )
