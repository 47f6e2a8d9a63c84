"""A parcel's case: waybill (masked), detections, risk reasons, decision, gate outcome, timings, verdicts."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from smartscreen.api.deps import AnySession, Case, Service
from smartscreen.api.schemas.responses import CaseOut
from smartscreen.review.render import Layer

router = APIRouter(prefix="/api/parcels", tags=["parcels"])


@router.get("/{case_id}", response_model=CaseOut)
def get_case(case: Case, session: AnySession, service: Service) -> CaseOut:
    view = service.case(session.account, case)
    base = CaseOut.model_validate(
        {
            **{f.name: getattr(view, f.name) for f in dataclasses.fields(view)},
            "waited_s": max(0.0, (service.now_ns() - view.timings.entered_at_ns) / 1e9),
            "images": {layer.value: f"/api/parcels/{case.case_id}/images/{layer.value}.png" for layer in Layer},
        }
    )
    return base
