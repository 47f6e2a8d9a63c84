"""DICOS export of a parcel: DX (high and low energy) and threat detection reports, as a zip."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from smartscreen.api.deps import Case, Service, SupervisorSession

router = APIRouter(prefix="/api/parcels", tags=["exports"])


@router.get("/{case_id}/dicos", response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def export_dicos(case: Case, session: SupervisorSession, service: Service) -> Response:
    if case.record is None or not case.image_sha256:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"parcel {case.case_id} has no stored scan to export")
    try:
        data = service.dicos_zip(case)
    except KeyError as e:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"scan of parcel {case.case_id} is not in the image store"
        ) from e
    return Response(
        content=data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{case.case_id}-dicos.zip"'},
    )
