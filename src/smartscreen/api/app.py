"""The FastAPI application factory of the review service."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from smartscreen import __version__
from smartscreen.api.deps import AnySession, AppState, LoginThrottle
from smartscreen.api.middleware import ApiMetrics, BodyLimitMiddleware, MetricsMiddleware, SecurityHeadersMiddleware
from smartscreen.api.routers import (
    accounts,
    auth,
    exports,
    health,
    images,
    metrics,
    parcels,
    queue,
    stats,
    tip,
    verdicts,
    web,
)
from smartscreen.config import ApiConfig
from smartscreen.errors import StorageError
from smartscreen.review.scans import RawRenderer, render_raw_file
from smartscreen.review.service import ReviewService
from smartscreen.review.tip import Projector, project_with_imaging

logger = logging.getLogger(__name__)


def create_app(
    settings: ApiConfig,
    journal_url: str,
    image_dir: Path,
    *,
    clock_ns: Callable[[], int] | None = None,
    projector: Projector = project_with_imaging,
    raw_renderer: RawRenderer = render_raw_file,
    rng: random.Random | None = None,
) -> FastAPI:
    """Build the review API and web page on the journal at ``journal_url`` and the images in ``image_dir``.

    The journal's and the review service's tables are created if missing. The database
    connection is closed when the app shuts down.
    """
    options: dict[str, object] = {
        "token_ttl_s": settings.token_ttl_s,
        "projector": projector,
        "raw_renderer": raw_renderer,
    }
    if clock_ns is not None:
        options["clock_ns"] = clock_ns
    if rng is not None:
        options["rng"] = rng
    service = ReviewService.open(journal_url, Path(image_dir), **options)
    return create_app_for(settings, service)


def create_app_for(settings: ApiConfig, service: ReviewService) -> FastAPI:
    """Build the app around an already opened service (tests, embedding)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="smartscreen review",
        version=__version__,
        description="Operator review of X-ray alarms: queue, cases, images, verdicts, statistics, TIP, DICOS export.",
        lifespan=lifespan,
        docs_url=None,  # no unauthenticated routes but /health: the schema is served at /api/openapi.json
        redoc_url=None,
        openapi_url=None,
    )
    state = AppState(settings=settings, service=service, metrics=ApiMetrics(), throttle=LoginThrottle())
    app.state.smartscreen = state
    for router in (health, auth, accounts, queue, parcels, verdicts, images, exports, stats, tip, metrics, web):
        app.include_router(router.router)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(session: AnySession) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        logger.error("%s %s: journal error: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "the audit journal is unavailable; try again"}, status_code=503)

    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
