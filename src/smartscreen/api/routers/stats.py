"""Per-operator and per-line statistics of the account's centre."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from smartscreen.api.deps import AnySession, Service, SupervisorSession
from smartscreen.api.schemas.responses import LineStatsOut, OperatorStatsOut
from smartscreen.review.models import Role

router = APIRouter(prefix="/api/stats", tags=["stats"])
SinceNs = Annotated[int, Query(ge=0, description="Only count from this time (ns since the epoch).")]


@router.get("/operators", response_model=list[OperatorStatsOut])
def operator_stats(session: AnySession, service: Service, since_ns: SinceNs = 0) -> list[OperatorStatsOut]:
    """Supervisors and admins see every operator of their centre; an operator sees their own row."""
    account = session.account
    only = None if account.role.at_least(Role.SUPERVISOR) else account.username
    rows = service.verdicts.operator_stats(account.centre_id, only, since_ns)
    return [OperatorStatsOut.model_validate(r) for r in rows]


@router.get("/lines", response_model=list[LineStatsOut])
def line_stats(session: SupervisorSession, service: Service, since_ns: SinceNs = 0) -> list[LineStatsOut]:
    return [LineStatsOut.model_validate(r) for r in service.verdicts.line_stats(session.account.centre_id, since_ns)]
