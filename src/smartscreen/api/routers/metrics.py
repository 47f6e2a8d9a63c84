"""``GET /metrics``: Prometheus exposition (authenticated, like every route but health)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smartscreen.api.deps import AnySession, AppState, get_state

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(session: AnySession, state: Annotated[AppState, Depends(get_state)]) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
