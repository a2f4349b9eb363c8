"""Account contact shapes (the SDK's `AccountContact`)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, ConfigDict, Field

from app.schemas.base import AccountRef, InputModel, TimestampedRead, required_line
from app.schemas.users import AccountNumber, PatchModel, RequiredEmail

ContactName = Annotated[str, Field(max_length=255, examples=["Jane"]), AfterValidator(required_line)]
Phone = Annotated[str, Field(max_length=20, examples=["617-555-1212"]), AfterValidator(required_line)]


class ContactRead(TimestampedRead):
    account: AccountRef
    first_name: str
    last_name: str
    email: str
    phone: str | None
    is_primary: bool
    is_test: bool
    welcomed: bool


class ContactCreate(InputModel):
    """A contact of your acting account (or `accountNumber`); one primary per account, emails unique per account."""

    account_number: AccountNumber | None = None
    first_name: ContactName
    last_name: ContactName
    email: RequiredEmail
    phone: Phone | None = None
    is_primary: bool = False
    is_test: bool = False
    welcomed: bool = Field(False, description="Whether the contact was sent the welcome notice (no mail is sent here).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"firstName": "Sam", "lastName": "Billing", "email": "billing@example.com", "isPrimary": False}
            ]
        }
    )


class ContactUpdate(PatchModel):
    """Only the fields sent change (`phone: null` clears it); a contact's account never changes."""

    nullable: ClassVar[frozenset[str]] = frozenset({"phone"})

    first_name: ContactName | None = None
    last_name: ContactName | None = None
    email: RequiredEmail | None = None
    phone: Phone | None = None
    is_primary: bool | None = None
    is_test: bool | None = None
    welcomed: bool | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"phone": "617-555-1212"}, {"isPrimary": True}, {"phone": None}]}
    )
