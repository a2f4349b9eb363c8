"""Who is calling: key -> immutable `Principal`, cached by digest, re-checked on every request.

The cache holds a snapshot of facts (key flags, expiry, the user's flags and memberships), never a
decision: expiry, activation and staff rules are evaluated on every request, and every write that
changes one of those facts invalidates the snapshot (by digest, or by the user/account tags).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cachetools import TTLCache
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.caching.registry import CacheRegistry, SingleFlightCache, Tag
from app.caching.rules import PRINCIPAL_CACHE as PRINCIPAL_CACHE
from app.errors import Unauthorized
from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import KIND_API_KEY, Account, ApiKey, User, UserProfile
from app.models.base import utcnow
from app.reads import Read, Reader

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Membership:
    profile_id: int
    account_id: int
    account_number: str


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    is_active: bool
    is_staff: bool
    is_superuser: bool
    key_id: int
    key_kind: str
    key_active: bool
    expires_at: datetime | None
    # Ordered by profile id: the first is the default acting account. A named key has one, its owner
    # profile's; a login token every profile of its user. Inactive accounts are left out (not for a superuser).
    memberships: tuple[Membership, ...]
    platform_account_id: int | None
    # Every account the credential's memberships were read from, inactive ones included: a change of any of
    # their flags must reload the principal (`principal_tags`).
    seen_account_ids: tuple[int, ...] = ()
    # A named key owned in an inactive account may not be used (superusers' keys excepted).
    owner_account_active: bool = True
    # Derived from `memberships` once: every request's scope check reads them, and a cached principal
    # serves many requests.
    profile_ids: tuple[int, ...] = field(init=False, repr=False, compare=False)
    account_ids: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # The accounts whose owned rows (plugins, keys) are in the read scope: every account of the principal's,
    # and the platform's (`permissions.owned_scope_shape`); empty for a superuser, who reads everything.
    readable_account_ids: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accounts = tuple(m.account_id for m in self.memberships)
        readable = accounts
        if self.platform_account_id is not None and self.platform_account_id not in accounts:
            readable = (*accounts, self.platform_account_id)
        object.__setattr__(self, "profile_ids", tuple(m.profile_id for m in self.memberships))
        object.__setattr__(self, "account_ids", accounts)
        object.__setattr__(self, "readable_account_ids", () if self.is_superuser else readable)

    def membership_in(self, account_id: int) -> Membership | None:
        return next((m for m in self.memberships if m.account_id == account_id), None)

    def membership_by_number(self, account_number: str) -> Membership | None:
        return next((m for m in self.memberships if m.account_number == account_number), None)

    def refusal(self, now: datetime) -> str | None:
        """Why this credential may not be used now, or None."""
        if not self.key_active:
            return "Api key is not activated."
        if self.expires_at is not None and self.expires_at <= now:
            return "Invalid token."  # knox's sentence for expired keys
        if not self.is_active:
            return "User inactive or deleted."
        if self.key_kind == KIND_API_KEY and not self.is_staff:
            return "API keys can only be used by staff users."
        if not self.owner_account_active:
            return "The key's account is inactive."
        return None


def principal_tags(principal: Principal) -> Iterable[Tag]:
    yield ("user", principal.user_id)
    for account_id in {*principal.seen_account_ids, *principal.account_ids}:
        yield ("account", account_id)


def principal_cache(caches: CacheRegistry) -> SingleFlightCache[str, Principal]:
    return caches.register(PRINCIPAL_CACHE, tags_of=principal_tags)


_platform_id = select(Account.id).where(Account.account_number == PLATFORM_ACCOUNT_NUMBER).scalar_subquery()
# One round trip: the key and its user, repeated on a row per membership (one row, with NULLs, for none).
# A named key's only membership is its owner profile's (a key acts in one account); a login token's are all
# of its user's. Every uncached request runs it: a driver read (`app.reads`).
_PRINCIPAL_READ = Read(
    select(
        ApiKey.id.label("key_id"),
        ApiKey.digest,
        ApiKey.kind,
        ApiKey.is_active.label("key_active"),
        ApiKey.expires_at,
        User.id.label("user_id"),
        User.username,
        User.is_active.label("user_active"),
        User.is_staff,
        User.is_superuser,
        _platform_id.label("platform_account_id"),
        UserProfile.id.label("profile_id"),
        UserProfile.account_id,
        Account.account_number,
        Account.is_active.label("account_active"),
    )
    .join(User, User.id == ApiKey.user_id)
    .outerjoin(
        UserProfile,
        and_(
            UserProfile.user_id == User.id,
            or_(ApiKey.kind != KIND_API_KEY, UserProfile.id == ApiKey.user_profile_id),
        ),
    )
    .outerjoin(Account, Account.id == UserProfile.account_id)
    .where(ApiKey.digest == bindparam("digest"))
    .order_by(UserProfile.id)
)


# The read's rows come from the driver as sequences: read by these names, never by position.
_PRINCIPAL_COLUMNS = tuple(_PRINCIPAL_READ.statement.selected_columns.keys())


async def load_principal(reader: Reader, digest: str) -> Principal | None:
    """One indexed query on a connection of its own (the cache shares this load between requests)."""
    rows = [
        dict(zip(_PRINCIPAL_COLUMNS, row, strict=True))
        for row in await _PRINCIPAL_READ.rows(reader, {"digest": digest})
    ]
    if not rows or not hmac.compare_digest(rows[0]["digest"], digest):
        return None
    first = rows[0]
    superuser = first["is_superuser"]
    found = [row for row in rows if row["profile_id"] is not None]
    # Inactive accounts are not the members' to act in; superusers are not limited by them.
    memberships = tuple(
        Membership(row["profile_id"], row["account_id"], row["account_number"])
        for row in found
        if row["account_active"] or superuser
    )
    return Principal(
        user_id=first["user_id"],
        username=first["username"],
        is_active=first["user_active"],
        is_staff=first["is_staff"],
        is_superuser=superuser,
        key_id=first["key_id"],
        key_kind=first["kind"],
        key_active=first["key_active"],
        expires_at=first["expires_at"],
        memberships=memberships,
        platform_account_id=first["platform_account_id"],
        seen_account_ids=tuple(row["account_id"] for row in found),
        owner_account_active=first["kind"] != KIND_API_KEY or superuser or all(row["account_active"] for row in found),
    )


async def authenticate(reader: Reader, caches: CacheRegistry, digest: str, *, now: datetime | None = None) -> Principal:
    principal = await principal_cache(caches).get(digest, lambda: load_principal(reader, digest))
    if principal is None:
        raise Unauthorized("Invalid token.")
    reason = principal.refusal(now or utcnow())
    if reason is not None:
        raise Unauthorized(reason)
    return principal


class LastUsedRecorder:
    """Writes `last_used_at` at most once per interval per key, by a targeted UPDATE in its own transaction.

    Never a full-row save: a concurrent deactivation can't be undone by it.
    """

    def __init__(self, engine: AsyncEngine, interval_seconds: int) -> None:
        self._engine = engine
        self._interval = timedelta(seconds=interval_seconds)
        self._recent: TTLCache[int, bool] | None = (
            TTLCache(maxsize=100_000, ttl=interval_seconds) if interval_seconds > 0 else None
        )

    def is_due(self, key_id: int) -> bool:
        """Whether `record` would write (checked first: nearly every request finds it written recently)."""
        return self._recent is None or key_id not in self._recent

    async def record(self, key_id: int) -> None:
        if not self.is_due(key_id):
            return
        if self._recent is not None:
            self._recent[key_id] = True
        now = utcnow()
        statement = (
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - self._interval),
            )
            # Keep updated_at: being used is not being modified.
            .values(last_used_at=now, updated_at=ApiKey.updated_at)
        )
        try:
            async with self._engine.begin() as conn:
                await conn.execute(statement)
        except Exception as exc:  # losing a usage timestamp must not fail the request it describes
            logger.warning("Could not record lastUsedAt for key %s: %s", key_id, type(exc).__name__)
