"""Login token shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.schemas.base import CamelModel
from app.schemas.users import UserRead


class LoginResponse(CamelModel):
    token: str = Field(description="A login token (shown once). Send it as `Authorization: Token <token>`.")
    expires_at: datetime
    user: UserRead
