"""The `Account` manifest, as the SDK's `SAMAccount` and the original's account.yaml.

`metadata.name` (normalised) identifies the account; `metadata.accountNumber` is read-only (describe shows
it; applying a different one is a 422). `spec.config` has the SDK's `SAMAccountSpecConfig` fields and
defaults; its validators are the REST schemas' (`app.schemas.accounts`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field

from app.schemas.accounts import (
    AddressLine,
    CompanyName,
    CountryCode,
    CurrencyCode,
    LanguageTag,
    PhoneNumber,
    PostalCode,
    Timezone,
)
from app.schemas.base import CamelModel
from app.schemas.manifests.base import API_VERSION, SAMDependency, SAMManifest, SAMMetadata, SAMModel
from app.schemas.users import AccountNumber

KIND: Final = "Account"

# The SDK's defaults (`SAMAccountSpecConfig`), which differ from the REST defaults (USA / EN / no timezone).
MANIFEST_COUNTRY = "US"
MANIFEST_LANGUAGE = "en-US"
MANIFEST_TIMEZONE = "America/New_York"
MANIFEST_CURRENCY = "USD"


class AccountMetadata(SAMMetadata):
    account_number: AccountNumber | None = Field(
        None,
        description=(
            "Read-only: shown by describe. Applying a different number to an existing account is a 422; a new "
            "account takes it when it is valid and unused (409 when used), else a number is generated."
        ),
    )


class AccountConfig(SAMModel):
    address1: AddressLine | None = None
    address2: AddressLine | None = None
    city: AddressLine | None = None
    company_name: CompanyName = Field(description="The legal entity of the account (required).")
    country: CountryCode | None = MANIFEST_COUNTRY
    currency: CurrencyCode | None = MANIFEST_CURRENCY
    language: LanguageTag | None = MANIFEST_LANGUAGE
    phone_number: PhoneNumber | None = None
    postal_code: PostalCode | None = None
    state: AddressLine | None = None
    timezone: Timezone | None = MANIFEST_TIMEZONE


class AccountSpec(SAMModel):
    config: AccountConfig


class AccountManifest(SAMManifest):
    kind: Literal["Account"]
    metadata: AccountMetadata
    spec: AccountSpec


# --- describe ---------------------------------------------------------------------------------------------


class AccountManifestMetadataRead(CamelModel):
    name: str
    description: str
    version: str
    tags: list[str]
    annotations: list[dict[str, Any]]
    account_number: str


class AccountConfigRead(CamelModel):
    address1: str | None
    address2: str | None
    city: str | None
    company_name: str
    country: str | None
    currency: str | None
    language: str | None
    phone_number: str | None
    postal_code: str | None
    state: str | None
    timezone: str | None


class AccountSpecRead(CamelModel):
    config: AccountConfigRead


class AccountStatusRead(CamelModel):
    record_locator: str
    created: datetime
    modified: datetime
    admin_account: str = Field(description="The account's first staff user (by user id), else its first user, else ''.")
    dependencies: list[SAMDependency] = Field(default_factory=list)


class AccountManifestRead(CamelModel):
    api_version: str = API_VERSION
    kind: Literal["Account"] = KIND
    metadata: AccountManifestMetadataRead
    spec: AccountSpecRead
    status: AccountStatusRead


def example_manifest() -> dict[str, Any]:
    """The original's account.yaml, under a name of its own and without a number (one is generated), so it
    applies cleanly next to accounts made from the original's file."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": "example_tenant",
            "description": "An example Smarter API manifest for an Account",
            "version": "1.0.0",
            "tags": ["example"],
            "annotations": [{"smarter.sh/created-by": "example"}],
        },
        "spec": {
            "config": {
                "companyName": "Example Tenant, Inc.",
                "address1": "1 Main St",
                "address2": "Suite 100",
                "city": "Cambridge",
                "state": "MA",
                "postalCode": "02139",
                "country": "US",
                "phoneNumber": "617-555-1212",
                "language": "en-US",
                "timezone": "America/New_York",
                "currency": "USD",
            }
        },
    }
