"""Request bodies. Unknown fields are rejected; every field is bounded."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smartscreen.domain.events import VerdictKind
from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.review.accounts import USERNAME_PATTERN
from smartscreen.review.models import Role
from smartscreen.review.passwords import MAX_PASSWORD_LENGTH

MAX_BOXES = 50
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # centre, line and parcel ids
MAX_COORD_PX = 100_000.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginRequest(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(_Body):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=10, max_length=MAX_PASSWORD_LENGTH)


class BoxIn(_Body):
    """A box in scan pixels (x = detector channel, y = scan line)."""

    class_name: str = Field(description="A class of the threat taxonomy.")
    x1: float = Field(ge=0, le=MAX_COORD_PX)
    y1: float = Field(ge=0, le=MAX_COORD_PX)
    x2: float = Field(ge=0, le=MAX_COORD_PX)
    y2: float = Field(ge=0, le=MAX_COORD_PX)

    @field_validator("class_name")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in CLASS_NAMES:
            raise ValueError(f"unknown class {value!r}; use one of {', '.join(CLASS_NAMES)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BoxIn:
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise ValueError("a box needs x2 > x1 and y2 > y1")
        return self


class VerdictRequest(_Body):
    kind: VerdictKind
    boxes: list[BoxIn] = Field(default_factory=list, max_length=MAX_BOXES)
    comment: str = Field(default="", max_length=2000)
    expected_last_seq: int | None = Field(
        default=None,
        ge=0,
        description="Sequence number of the newest verdict the client saw (0 for none); a newer one gives 409.",
    )


class AccountCreate(_Body):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=10, max_length=MAX_PASSWORD_LENGTH)
    role: Role
    centre_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    display_name: str = Field(default="", max_length=128)


class AccountUpdate(_Body):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=MAX_PASSWORD_LENGTH)
    display_name: str | None = Field(default=None, max_length=128)


class TipSettingsRequest(_Body):
    enabled: bool
    probability: float = Field(ge=0.0, le=1.0, description="Chance of a TIP case after each real verdict.")


class TipProjectRequest(_Body):
    threat_class: str | None = Field(default=None, description="Class to project; random prohibited class if unset.")

    @field_validator("threat_class")
    @classmethod
    def _known_class(cls, value: str | None) -> str | None:
        if value is not None and value not in CLASS_NAMES:
            raise ValueError(f"unknown class {value!r}; use one of {', '.join(CLASS_NAMES)}")
        return value
