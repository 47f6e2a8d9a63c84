"""Scan images as PNG: pseudo-colour, high, low, material map, boxes overlay; cacheable by content hash."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status

from smartscreen.api.deps import AnySession, Case, Service
from smartscreen.errors import ImagingError
from smartscreen.review.render import Layer

router = APIRouter(prefix="/api/parcels", tags=["images"])
logger = logging.getLogger(__name__)


@router.get(
    "/{case_id}/images/{layer}.png",
    responses={200: {"content": {"image/png": {}}}, 304: {"description": "not modified"}},
    response_class=Response,
)
def get_image(
    case: Case,
    layer: Layer,
    session: AnySession,
    service: Service,
    boxes: Annotated[bool, Query(description="Draw detector and operator boxes on the layer.")] = False,
    if_none_match: Annotated[str | None, Header(max_length=256)] = None,
) -> Response:
    sha = case.image_sha256
    if not sha:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"parcel {case.case_id} has no stored scan")
    draw = boxes or layer is Layer.BOXES
    # the boxes change when a verdict is added: the parcel's last journal sequence joins the tag
    version = case.record.last_seq if (draw and case.record is not None) else 0
    etag = '"' + hashlib.sha256(f"{sha}:{layer.value}:{int(draw)}:{version}".encode()).hexdigest()[:40] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=86400, immutable" if not draw else "private, no-cache",
    }
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        png = service.png(case, layer, draw, etag)
    except KeyError as e:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"scan of parcel {case.case_id} is not in the image store"
        ) from e
    except ImagingError as e:
        logger.error("parcel %s: cannot render scan %s: %s", case.case_id, sha[:12], e)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"scan of parcel {case.case_id}: {e}") from e
    return Response(content=png, media_type="image/png", headers=headers)
