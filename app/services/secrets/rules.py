"""The secret rules in one place: scopes, messages, the expiry rule, and the error a use of a secret raises."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement

from app.errors import Conflict, Unprocessable
from app.models import Secret
from app.services.permissions import ownership_scope
from app.services.principals import Principal

KIND = "Secret"
NOT_FOUND = "No secret with this id is visible to you."
EXPIRY_IN_PAST = "expiresAt must be in the future."
MASK_ON_CREATE = "value is the mask '********' (what describe shows): give the secret's real value."


def not_found_by_name(name: str) -> str:
    return f"No Secret named {name!r} is visible to you."


def visible(principal: Principal) -> ColumnElement[bool]:
    """Secrets are read and written with the ownership scope, like API keys: superuser all; staff their
    accounts' secrets; others the secrets of their own profiles. Outside it: 404."""
    return ownership_scope(principal, Secret)


def check_expiry(expires_at: datetime | None, *, now: datetime, field: str = "expiresAt") -> None:
    """A new or changed expiry must be in the future (an unchanged one may have passed)."""
    if expires_at is not None and expires_at <= now:
        raise Unprocessable.field(field, EXPIRY_IN_PAST)


class SecretUnavailable(Conflict):
    """A call needs a secret that no longer exists or has expired (409: the state, not the request, is wrong)."""


def missing(secret_id: int) -> SecretUnavailable:
    return SecretUnavailable(f"The secret (id {secret_id}) this needs no longer exists.")


def expired(name: str, expires_at: datetime) -> SecretUnavailable:
    return SecretUnavailable(f"The secret {name!r} expired at {expires_at.isoformat()}: give it a new value or expiry.")


class SecretInUse(Conflict):
    """Deleting a secret that connections still use."""


def in_use(name: str, users: list[tuple[str, str]]) -> SecretInUse:
    named = ", ".join(f"{kind} {user}" for kind, user in users)
    return SecretInUse(f"The secret {name!r} is used by {named}: change or delete them first.")
