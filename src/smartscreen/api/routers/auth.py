"""Login, logout and the current account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status

from smartscreen.api.deps import AnySession, AppState, Service, get_state
from smartscreen.api.schemas.requests import LoginRequest, PasswordChange
from smartscreen.api.schemas.responses import AccountOut, TokenOut

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
def login(body: LoginRequest, service: Service, state: Annotated[AppState, Depends(get_state)]) -> TokenOut:
    throttle = state.throttle
    if throttle.locked(body.username):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again in 5 minutes")
    result = service.accounts.login(body.username, body.password)
    if result is None:
        throttle.failed(body.username)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    throttle.succeeded(body.username)
    token, session = result
    return TokenOut(
        token=token, expires_at_ns=session.expires_at_ns, account=AccountOut.model_validate(session.account)
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: AnySession, service: Service) -> Response:
    service.accounts.logout(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=AccountOut)
def me(session: AnySession) -> AccountOut:
    return AccountOut.model_validate(session.account)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, session: AnySession, service: Service) -> Response:
    """Change the own password (the current one is required); every session of the account ends."""
    if service.accounts.authenticate(session.account.username, body.current_password) is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    try:
        service.accounts.update(session.account.username, password=body.new_password)
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)
