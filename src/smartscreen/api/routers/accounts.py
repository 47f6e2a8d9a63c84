"""Account management (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from smartscreen.api.deps import AdminSession, Service
from smartscreen.api.schemas.requests import AccountCreate, AccountUpdate
from smartscreen.api.schemas.responses import AccountOut
from smartscreen.review.accounts import USERNAME_PATTERN, AccountError, AccountExistsError, AccountNotFoundError

router = APIRouter(prefix="/api/accounts", tags=["accounts"])
Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]


@router.get("", response_model=list[AccountOut])
def list_accounts(session: AdminSession, service: Service) -> list[AccountOut]:
    return [AccountOut.model_validate(a) for a in service.accounts.list()]


@router.post("", response_model=AccountOut, status_code=status.HTTP_201_CREATED)
def create_account(body: AccountCreate, session: AdminSession, service: Service) -> AccountOut:
    try:
        account = service.accounts.create(
            body.username, body.password, centre_id=body.centre_id, role=body.role, display_name=body.display_name
        )
    except AccountExistsError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    except (AccountError, ValueError) as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    return AccountOut.model_validate(account)


@router.patch("/{username}", response_model=AccountOut)
def update_account(username: Username, body: AccountUpdate, session: AdminSession, service: Service) -> AccountOut:
    if username == session.account.username and (body.disabled or (body.role and body.role != session.account.role)):
        raise HTTPException(status.HTTP_409_CONFLICT, "admins cannot disable or demote themselves")
    try:
        account = service.accounts.update(
            username, role=body.role, disabled=body.disabled, password=body.password, display_name=body.display_name
        )
    except AccountNotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    return AccountOut.model_validate(account)
