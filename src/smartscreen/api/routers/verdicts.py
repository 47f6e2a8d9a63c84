"""Verdicts: threat confirmed (boxes corrected or added), false alarm, needs opening. Append-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from smartscreen.api.deps import AnySession, AppState, Case, Service, get_state
from smartscreen.api.schemas.requests import VerdictRequest
from smartscreen.api.schemas.responses import TipRevealOut, VerdictOut, VerdictResultOut
from smartscreen.domain.events import VerdictBox
from smartscreen.review.models import TipOutcome
from smartscreen.review.verdicts import VerdictConflictError

router = APIRouter(prefix="/api/parcels", tags=["verdicts"])


@router.get("/{case_id}/verdicts", response_model=list[VerdictOut])
def list_verdicts(case: Case, session: AnySession, service: Service) -> list[VerdictOut]:
    return [VerdictOut.model_validate(v) for v in service.verdict_history(case)]


@router.post("/{case_id}/verdicts", response_model=VerdictResultOut, status_code=status.HTTP_201_CREATED)
def post_verdict(
    body: VerdictRequest,
    case: Case,
    session: AnySession,
    service: Service,
    state: Annotated[AppState, Depends(get_state)],
) -> VerdictResultOut:
    boxes = tuple(VerdictBox(b.class_name, b.x1, b.y1, b.x2, b.y2) for b in body.boxes)
    if case.tip is not None and case.tip.outcome is not TipOutcome.PENDING:
        raise HTTPException(status.HTTP_409_CONFLICT, f"parcel {case.case_id} was already judged")
    try:
        outcome = service.submit_verdict(session.account, case, body.kind, boxes, body.comment, body.expected_last_seq)
    except VerdictConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    if outcome.tip is not None:
        tip = outcome.tip
        state.metrics.tip.labels(tip.outcome.value).inc()
        found = "you found it" if tip.outcome is TipOutcome.HIT else "it was missed"
        return VerdictResultOut(
            verdict=None,
            tip=TipRevealOut(
                threat_class=tip.threat_class,
                box_xyxy=tip.box_xyxy,
                outcome=tip.outcome,
                response_ms=tip.response_ms,
                iou=tip.iou,
            ),
            message=f"This was a threat image projection test ({tip.threat_class}): {found}. "
            "No real parcel was affected.",
        )
    assert outcome.verdict is not None
    state.metrics.verdicts.labels(outcome.verdict.kind.value).inc()
    return VerdictResultOut(
        verdict=VerdictOut.model_validate(outcome.verdict), tip=None, message=f"verdict {outcome.verdict.seq} recorded"
    )
