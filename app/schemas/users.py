"""User shapes (the SDK's `User`: id, username, firstName, lastName, email, isStaff, isSuperuser).

Also the small field types and the update base that profiles and contacts share.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from app import identifiers
from app.schemas.base import Email, IdentifiedRead, InputModel, Username, one_line


def _account_number(value: str) -> str:
    if not identifiers.is_account_number(value):
        raise ValueError("must look like 1234-5678-9012.")
    return value


PersonName = Annotated[str, Field(max_length=150, examples=["Jane"]), AfterValidator(one_line)]
AccountNumber = Annotated[str, Field(max_length=14, examples=["3141-5926-5359"]), AfterValidator(_account_number)]
RequiredEmail = Annotated[Email, Field(min_length=3)]
# Bounded so nobody can make the server hash megabytes; argon2 has no other length limit.
Password = Annotated[
    str,
    Field(
        min_length=8,
        max_length=1024,
        description="Write-only; stored as an argon2 hash.",
        json_schema_extra={"writeOnly": True},
    ),
]


class PatchModel(InputModel):
    """A PATCH body: every field optional, but a field that is sent may not be null unless it says so."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _sent_fields_are_not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields present in the body (defaults are not validated).
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null; leave the field out to keep its value.")
        return value


class UserRead(IdentifiedRead):
    username: str
    first_name: str
    last_name: str
    email: str
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: datetime | None
    date_joined: datetime


class UserCreate(InputModel):
    """A new user, with a profile in your acting account (or `accountNumber`) and a contact there."""

    username: Username
    email: Email = ""
    first_name: PersonName = ""
    last_name: PersonName = ""
    password: Password | None = Field(
        None, description="Optional; without one the user can only use API keys. Never returned."
    )
    is_active: bool = True
    is_staff: bool = Field(False, description="Account admin. Only staff and superusers create users.")
    is_superuser: bool = Field(False, description="Only a superuser may set it.")
    account_number: AccountNumber | None = Field(
        None, description="The account of the new user's profile: a superuser may name any, staff one of theirs."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "jane.doe",
                    "email": "jane@example.com",
                    "firstName": "Jane",
                    "lastName": "Doe",
                    "password": "correct horse battery staple",
                    "isStaff": False,
                }
            ]
        }
    )


class UserUpdate(PatchModel):
    """Only the fields sent change. Users may change their own names, email and password; flags need staff
    (`isStaff`, `isActive`) or a superuser (`isSuperuser`)."""

    email: Email | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    password: Password | None = None
    is_active: bool | None = None
    is_staff: bool | None = None
    is_superuser: bool | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"firstName": "Janet"}, {"isActive": False}]})
