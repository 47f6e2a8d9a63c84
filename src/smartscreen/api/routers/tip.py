"""Threat image projection: per-operator settings, forced projection, detection-rate report (supervisors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from smartscreen.api.deps import Service, SupervisorSession
from smartscreen.api.schemas.requests import TipProjectRequest, TipSettingsRequest
from smartscreen.api.schemas.responses import TipCaseOut, TipReportRowOut, TipSettingsOut
from smartscreen.review.accounts import USERNAME_PATTERN
from smartscreen.review.models import Account, Role, Session
from smartscreen.review.service import ReviewService

router = APIRouter(prefix="/api/tip", tags=["tip"])
Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]


def _operator_of_centre(service: ReviewService, session: Session, username: str) -> Account:
    account = service.accounts.get(username)
    if account is None or account.centre_id != session.account.centre_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {username} in your centre")
    if account.role is not Role.OPERATOR:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{username} is not an operator")
    return account


@router.get("/operators", response_model=list[TipSettingsOut])
def list_settings(session: SupervisorSession, service: Service) -> list[TipSettingsOut]:
    return [
        TipSettingsOut.model_validate(service.tip.settings(a.username))
        for a in service.accounts.list(session.account.centre_id)
        if a.role is Role.OPERATOR
    ]


@router.put("/operators/{username}", response_model=TipSettingsOut)
def configure(
    username: Username, body: TipSettingsRequest, session: SupervisorSession, service: Service
) -> TipSettingsOut:
    _operator_of_centre(service, session, username)
    settings = service.tip.configure(
        username, enabled=body.enabled, probability=body.probability, by=session.account.username
    )
    return TipSettingsOut.model_validate(settings)


@router.post("/operators/{username}/project", response_model=TipCaseOut, status_code=status.HTTP_201_CREATED)
def project_now(
    username: Username, body: TipProjectRequest, session: SupervisorSession, service: Service
) -> TipCaseOut:
    """Prepare a TIP case for the operator now (training, audits, tests)."""
    operator = _operator_of_centre(service, session, username)
    event = service.tip.project_for(operator, body.threat_class)
    if event is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "no clean parcel with a raw scan in this centre to project into")
    return TipCaseOut.model_validate(event)


@router.get("/report", response_model=list[TipReportRowOut])
def report(session: SupervisorSession, service: Service) -> list[TipReportRowOut]:
    operators = [a.username for a in service.accounts.list(session.account.centre_id) if a.role is Role.OPERATOR]
    rows = service.tip.report(session.account.centre_id, operators)
    return [TipReportRowOut.model_validate(r) for r in rows]
