"""Account shapes (the SDK's `Account`), and the field types the REST schemas and the `Account` manifest share.

One definition per rule: `CountryCode`, `CurrencyCode`, `LanguageTag`, `Timezone` and the address line types
are used by `AccountCreate`/`AccountUpdate` here and by `app.schemas.manifests.account`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from app.schemas.base import (
    Annotations,
    Description,
    MetadataCreate,
    MetadataRead,
    Name,
    Tags,
    Version,
    one_line,
    required_line,
)
from app.schemas.users import AccountNumber, PatchModel

# Shapes only (no registry of codes is shipped): ISO 3166 alpha-2/alpha-3, ISO 4217, and BCP 47's
# language[-Script][-REGION] subset that the original accepted (ISO 639 language, optional region).
_COUNTRY = re.compile(r"[A-Z]{2,3}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")
# IANA keys are relative paths of letters, digits and `_+-`: checked before the file system is asked.
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")

DEFAULT_COUNTRY = "USA"
DEFAULT_LANGUAGE = "EN"
DEFAULT_CURRENCY = "USD"


def _country(value: str) -> str:
    if _COUNTRY.fullmatch(value) is None:
        raise ValueError("must be an ISO 3166 country code in capitals, alpha-2 or alpha-3 (e.g. US, USA).")
    return value


def _currency(value: str) -> str:
    if _CURRENCY.fullmatch(value) is None:
        raise ValueError("must be an ISO 4217 currency code: three capital letters (e.g. USD).")
    return value


def _language(value: str) -> str:
    if _LANGUAGE.fullmatch(value) is None:
        raise ValueError("must be a BCP 47 language tag such as EN, en or en-US.")
    return value


def _timezone(value: str) -> str:
    message = "must be an IANA time zone such as America/New_York or UTC."
    if _TIMEZONE.fullmatch(value) is None:
        raise ValueError(message)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as `America`
        raise ValueError(message) from None
    return value


CountryCode = Annotated[str, Field(max_length=3, examples=["USA"]), AfterValidator(_country)]
CurrencyCode = Annotated[str, Field(max_length=3, examples=["USD"]), AfterValidator(_currency)]
LanguageTag = Annotated[str, Field(max_length=16, examples=["en-US"]), AfterValidator(_language)]
Timezone = Annotated[str, Field(max_length=64, examples=["America/New_York"]), AfterValidator(_timezone)]
CompanyName = Annotated[str, Field(max_length=255, examples=["Humble Geniuses, Inc."]), AfterValidator(required_line)]
AddressLine = Annotated[str, Field(max_length=255, examples=["1 Main St"]), AfterValidator(one_line)]
PhoneNumber = Annotated[str, Field(max_length=50, examples=["617-555-1212"]), AfterValidator(one_line)]
PostalCode = Annotated[str, Field(max_length=20, examples=["02139"]), AfterValidator(one_line)]

IMMUTABLE_NUMBER = "accountNumber is immutable and cannot be changed once set."


class AccountRead(MetadataRead):
    account_number: str = Field(examples=["3141-5926-5359"])
    is_default_account: bool
    company_name: str
    phone_number: str | None
    address1: str | None
    address2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    language: str | None
    timezone: str | None
    currency: str | None
    is_active: bool

    @field_validator("tags")
    @classmethod
    def _stable_order(cls, value: list[str]) -> list[str]:
        # Code point order on every backend (the database's collation may order tags otherwise).
        return sorted(value)


class AccountCreate(MetadataCreate):
    """A new account (superusers only). The number is generated unless a valid, unused one is given."""

    account_number: AccountNumber | None = Field(
        None, description="`DDDD-DDDD-DDDD`; generated (random, retried on collision) when left out. Unused, or 409."
    )
    is_default_account: bool = Field(False, description="At most one account is the default (409).")
    company_name: CompanyName
    phone_number: PhoneNumber | None = None
    address1: AddressLine | None = None
    address2: AddressLine | None = None
    city: AddressLine | None = None
    state: AddressLine | None = None
    postal_code: PostalCode | None = None
    country: CountryCode | None = DEFAULT_COUNTRY
    language: LanguageTag | None = DEFAULT_LANGUAGE
    timezone: Timezone | None = None
    currency: CurrencyCode | None = DEFAULT_CURRENCY
    is_active: bool = True

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Humble Geniuses",
                    "companyName": "Humble Geniuses, Inc.",
                    "city": "Cambridge",
                    "state": "MA",
                    "country": "US",
                    "language": "en-US",
                    "timezone": "America/New_York",
                    "currency": "USD",
                    "tags": ["production"],
                }
            ]
        }
    )


class AccountUpdate(PatchModel):
    """Only the fields sent change. Staff of the account may change its description, tags, annotations, company
    and address fields, country, language, timezone and currency; the other fields need a superuser.
    `accountNumber` never changes (422)."""

    nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "phone_number",
            "address1",
            "address2",
            "city",
            "state",
            "postal_code",
            "country",
            "language",
            "timezone",
            "currency",
        }
    )

    name: Name | None = None
    description: Description | None = None
    version: Version | None = None
    tags: Tags | None = None
    annotations: Annotations | None = None
    company_name: CompanyName | None = None
    phone_number: PhoneNumber | None = None
    address1: AddressLine | None = None
    address2: AddressLine | None = None
    city: AddressLine | None = None
    state: AddressLine | None = None
    postal_code: PostalCode | None = None
    country: CountryCode | None = None
    language: LanguageTag | None = None
    timezone: Timezone | None = None
    currency: CurrencyCode | None = None
    is_active: bool | None = Field(None, description="Superusers only.")
    is_default_account: bool | None = Field(None, description="Superusers only; at most one default account (409).")
    # Declared (not just forbidden as unknown) so the 422 says why: the number is the account's identity.
    account_number: Any = Field(
        None, description="Read-only: sending it is a 422.", json_schema_extra={"readOnly": True}
    )

    @field_validator("account_number", mode="before")
    @classmethod
    def _immutable_number(cls, value: Any) -> Any:
        raise ValueError(IMMUTABLE_NUMBER)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"companyName": "Humble Geniuses, LLC"}, {"timezone": "Europe/Paris"}]}
    )


# Fields staff of the account may change; every other field of `AccountUpdate` needs a superuser.
STAFF_FIELDS = frozenset({"description", "tags", "annotations", "company_name", *AccountUpdate.nullable})
