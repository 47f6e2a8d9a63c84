"""FastAPI dependencies: the services, the authenticated session, role checks and paging."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Query, Request, status

from smartscreen.api.middleware import ApiMetrics
from smartscreen.api.schemas.requests import ID_PATTERN
from smartscreen.config import ApiConfig
from smartscreen.review.models import Role, Session
from smartscreen.review.service import ResolvedCase, ReviewService

MAX_FAILURES = 5
LOCKOUT_S = 300.0


class LoginThrottle:
    """Locks a username for a while after repeated failed logins (slows password guessing)."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def locked(self, username: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if now - t < LOCKOUT_S]
            self._failures[username] = recent
            return len(recent) >= MAX_FAILURES

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures.setdefault(username, []).append(time.monotonic())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: ApiConfig
    service: ReviewService
    metrics: ApiMetrics
    throttle: LoginThrottle


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.smartscreen
    return state


def get_service(state: Annotated[AppState, Depends(get_state)]) -> ReviewService:
    return state.service


def current_session(
    request: Request,
    state: Annotated[AppState, Depends(get_state)],
    authorization: Annotated[str | None, Header(max_length=256)] = None,
) -> Session:
    """The session of the ``Authorization: Bearer <token>`` header, or 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: send Authorization: Bearer <token> (POST /api/auth/login)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session = state.service.accounts.session_for(token.strip())
    if session is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "token unknown, expired or revoked: log in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.username = session.account.username
    return session


def require(role: Role) -> Callable[[Session], Session]:
    """Dependency factory: the session if its role is at least ``role``, else 403."""

    def check(session: Annotated[Session, Depends(current_session)]) -> Session:
        if not session.account.role.at_least(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role.value} role")
        return session

    return check


AnySession = Annotated[Session, Depends(current_session)]
SupervisorSession = Annotated[Session, Depends(require(Role.SUPERVISOR))]
AdminSession = Annotated[Session, Depends(require(Role.ADMIN))]
Service = Annotated[ReviewService, Depends(get_service)]
CaseId = Annotated[str, Path(pattern=ID_PATTERN, description="Parcel (case) id.")]


def resolve_case(case_id: CaseId, session: AnySession, service: Service) -> ResolvedCase:
    """The case if the session may see it; 404 otherwise (also for other centres: ids cannot be probed)."""
    resolved = service.resolve(session.account, case_id)
    if resolved is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no parcel {case_id} in your centre")
    return resolved


Case = Annotated[ResolvedCase, Depends(resolve_case)]


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    limit: int


def page(
    state: Annotated[AppState, Depends(get_state)],
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int | None, Query(ge=1, description="Page size (default 50, at most max_page_size).")] = None,
) -> Page:
    if limit is None:
        limit = min(50, state.settings.max_page_size)
    if limit > state.settings.max_page_size:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"limit must be at most {state.settings.max_page_size}"
        )
    return Page(offset, limit)


Paging = Annotated[Page, Depends(page)]

_ID = re.compile(ID_PATTERN)


def check_ids(values: list[str], what: str) -> None:
    """422 naming the first malformed id."""
    for value in values:
        if not _ID.match(value):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"malformed {what} id {value[:80]!r}")
