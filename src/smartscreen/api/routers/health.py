"""``GET /health``: the one route without authentication (liveness and journal reachability)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartscreen import __version__
from smartscreen.api.deps import Service
from smartscreen.api.schemas.responses import HealthOut
from smartscreen.errors import StorageError

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/health", response_model=HealthOut)
def health(service: Service) -> JSONResponse:
    try:
        service.db.query("SELECT 1")
    except StorageError as e:
        logger.error("health: journal unreachable: %s", e)
        return JSONResponse(HealthOut(status="degraded", journal="unreachable", version=__version__).model_dump(), 503)
    return JSONResponse(HealthOut(status="ok", journal="ok", version=__version__).model_dump())
