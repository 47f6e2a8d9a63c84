"""The review queue across the lines of the account's centre, oldest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from smartscreen.api.deps import AnySession, Paging, Service, check_ids
from smartscreen.api.schemas.responses import QueueItemOut, QueuePageOut
from smartscreen.domain.taxonomy import CLASS_NAMES

router = APIRouter(prefix="/api/queue", tags=["queue"])

ClassName = Literal[CLASS_NAMES]  # type: ignore[valid-type]


@router.get("", response_model=QueuePageOut)
def get_queue(
    session: AnySession,
    service: Service,
    paging: Paging,
    line: Annotated[list[str] | None, Query(max_length=32, description="Line id(s) to include.")] = None,
    class_name: Annotated[ClassName | None, Query(alias="class")] = None,
    status: Literal["pending", "reviewed", "all"] = "pending",
) -> QueuePageOut:
    if line is not None:
        check_ids(line, "line")
    entries, total = service.queue(
        session.account,
        line_ids=tuple(line) if line else None,
        class_name=class_name,
        status=status,
        offset=paging.offset,
        limit=paging.limit,
    )
    now = service.now_ns()
    return QueuePageOut(
        items=[
            QueueItemOut(
                case_id=e.case_id,
                line_id=e.line_id,
                entered_at_ns=e.entered_at_ns,
                waited_s=max(0.0, (now - e.entered_at_ns) / 1e9),
                route=e.route,
                risk_score=e.risk_score,
                reason_codes=e.reason_codes,
                detected_classes=e.detected_classes,
                max_score=e.max_score,
                review_status=e.review_status,
                last_verdict=e.last_verdict,
            )
            for e in entries
        ],
        total=total,
        offset=paging.offset,
        limit=paging.limit,
        server_time_ns=now,
    )
