"""API keys: issuing and revoking (plaintext only in the return value), the REST rules and the
`SmarterAuthToken` manifest.

Rules:
- keys are read with the ownership scope (superuser all; staff their accounts' keys; others their own
  profiles'), named keys only: login tokens are never listed or addressable here;
- a key's user must be staff when the key is created; a staff caller creates keys for the staff users
  they may manage (`permissions.user_manage_scope`), a superuser for any staff user; only a superuser
  creates or changes a superuser's keys; a key acts only in its owner profile's account;
- every write of a key drops its cached principal, here and, through NOTIFY, in every other process, once
  the unit of work commits (derived from the rows written: `cache_rules`; a statement returns the digest).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, and_, delete, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from app import text
from app.errors import NotFound, Unprocessable
from app.identifiers import hashed_id, record_locator
from app.models import KIND_API_KEY, KIND_LOGIN, Account, ApiKey, Base, Tag, User, UserProfile
from app.models.base import utcnow
from app.schemas.api_keys import ApiKeyCreate, ApiKeyRead, ApiKeyUpdate
from app.schemas.manifests.smarterauthtoken import (
    SmarterAuthTokenConfigRead,
    SmarterAuthTokenManifest,
    SmarterAuthTokenManifestRead,
    SmarterAuthTokenMetadataRead,
    SmarterAuthTokenSpecRead,
    SmarterAuthTokenStatusRead,
)
from app.services import keys, profiles
from app.services import tags as tag_service
from app.services.base import Page, assign, flush, path_id
from app.services.permissions import (
    Acting,
    acting_account,
    acting_required,
    foreign_profile,
    get_scoped,
    ownership_scope,
    require,
    require_manageable,
    user_manage_scope,
    user_scope,
)
from app.services.principals import Principal

STAFF_ONLY = "API keys can only be created for staff users."
NOT_FOUND = "No API key with this id is visible to you."
CALLER_NOT_STAFF = "Only staff can create API keys."
APPLY_NOT_STAFF = "Only account admins can apply auth token manifests."
SUPERUSER_KEYS = "Only a superuser can create or change the API keys of a superuser."
EXPIRY_IN_PAST = "expiresAt must be in the future."

# What a key response shows besides the key's own columns: its user, its owner profile's account.
_USER = (User.username, User.email)
READ_OPTIONS: tuple[ORMOption, ...] = (
    joinedload(ApiKey.user).load_only(*_USER),
    joinedload(ApiKey.user_profile)
    .load_only(UserProfile.user_id, UserProfile.account_id)
    .options(
        joinedload(UserProfile.user).load_only(*_USER),
        joinedload(UserProfile.account).load_only(Account.account_number),
    ),
    selectinload(ApiKey.tag_links),
)


# --- issuing and revoking (bootstrap, CLI, login and tests use these) --------------------------------------


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise Unprocessable.field("expiresAt", EXPIRY_IN_PAST)


async def issue_key(
    session: AsyncSession,
    *,
    user: User,
    profile: UserProfile | None,
    name: str,
    kind: str = KIND_API_KEY,
    description: str = "",
    version: str = "1.0.0",
    tags: list[str] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    expires_at: datetime | None = None,
    is_active: bool = True,
    prefix_length: int = keys.KNOX_TOKEN_KEY_LENGTH,
) -> tuple[ApiKey, str]:
    """Create a key for `user`, owned by `profile`; returns (row, plaintext). 409 on a duplicate name."""
    if kind == KIND_API_KEY and not user.is_staff:
        raise Unprocessable.field("username", STAFF_ONLY)
    if kind == KIND_API_KEY and profile is None:
        raise Unprocessable.field("username", "The key's user has no profile in this account.")
    if profile is not None and profile.user_id != user.id:
        raise Unprocessable.field("username", "The owner profile must belong to the key's user.")
    check_expiry(expires_at)
    plaintext = keys.generate_key()
    row = ApiKey(
        token_key=keys.token_key_of(plaintext, prefix_length),
        digest=keys.digest_of(plaintext),
        kind=kind,
        user_id=user.id,
        user_profile_id=profile.id if profile else None,
        account_id=profile.account_id if profile else None,
        name=name,
        description=description,
        version=version,
        annotations=annotations or [],
        expires_at=expires_at,
        is_active=is_active,
    )
    row.tag_links = await tag_service.resolve(session, tags or [])
    session.add(row)
    await flush(session)
    return row, plaintext


async def issue_login_token(session: AsyncSession, user: User, ttl_seconds: int) -> tuple[ApiKey, str]:
    """A login token (any active user), owned by the user's first profile if they have one."""
    profile = (
        (await session.execute(select(UserProfile).where(UserProfile.user_id == user.id).order_by(UserProfile.id)))
        .scalars()
        .first()
    )
    # Expired login tokens of this user are garbage; the login path is the cheap place to collect them.
    await session.execute(
        delete(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.kind == KIND_LOGIN, ApiKey.expires_at <= utcnow())
        .returning(ApiKey.digest)
    )
    return await issue_key(
        session,
        user=user,
        profile=profile,
        name=f"login_{uuid.uuid4().hex[:16]}",
        kind=KIND_LOGIN,
        description="Login token",
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )


async def revoke_login_tokens(session: AsyncSession, user_id: int) -> int:
    """Delete all of a user's login tokens (named API keys are untouched)."""
    rows = (
        (
            await session.execute(
                delete(ApiKey).where(ApiKey.user_id == user_id, ApiKey.kind == KIND_LOGIN).returning(ApiKey.digest)
            )
        )
        .scalars()
        .all()
    )
    return len(rows)


# --- scopes and lookups -------------------------------------------------------------------------------------


def visible(principal: Principal) -> ColumnElement[bool]:
    """Named keys in the caller's ownership scope (keys are sensitive: no wider read scope)."""
    return and_(ApiKey.kind == KIND_API_KEY, ownership_scope(principal, ApiKey))


def writable(principal: Principal) -> ColumnElement[bool]:
    """Within `visible`: everything for a superuser; for others, keys whose user is not a superuser."""
    if principal.is_superuser:
        return true()
    return ~exists().where(User.id == ApiKey.user_id, User.is_superuser)


def _by_ref(value: str) -> ColumnElement[bool]:
    """A path `{id}`: the key's UUID (`keyId`), its integer id or its hashedId."""
    if len(value) in (32, 36):
        try:
            return ApiKey.key_id == uuid.UUID(value)
        except ValueError:
            pass  # e.g. a 32-character hashed id
    return ApiKey.id == path_id(value, not_found=NOT_FOUND)


async def _reload(session: AsyncSession, key_id: int) -> ApiKey:
    statement = (
        select(ApiKey).where(ApiKey.id == key_id).options(*READ_OPTIONS).execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one()


async def _writable_key(
    session: AsyncSession, principal: Principal, statement: Select[ApiKey], not_found: str
) -> ApiKey:
    """404 outside the ownership scope, 403 for a superuser's key (unless the caller is one)."""
    return await get_scoped(
        session, statement, write_scope=writable(principal), not_found=not_found, forbidden=SUPERUSER_KEYS
    )


def _ref_statement(principal: Principal, ref: str) -> Select[ApiKey]:
    return select(ApiKey).where(_by_ref(ref), visible(principal))


async def _key_owner(
    session: AsyncSession, principal: Principal, username: str, acting: Acting, *, named: bool
) -> tuple[User, UserProfile]:
    """The user a new (or re-applied) key is for, and the profile that owns it.

    The owner profile is the user's in the acting account; for a superuser who named no account, else the
    user's only profile (several and none in the acting account: 422 asking for `accountNumber`).
    404 when the caller cannot see the user; 403 unless the caller may manage them
    (`permissions.user_manage_scope`) or they are the caller; 422 for a non-staff user.
    """
    # FOR SHARE: a concurrent demotion waits for this unit of work, so the key's user is staff when it is made.
    statement = (
        select(User, user_manage_scope(principal), foreign_profile(principal))
        .where(User.username == username, user_scope(principal))
        .with_for_update(read=True, of=User)
    )
    found = (await session.execute(statement)).one_or_none()
    if found is None:
        raise NotFound(f"No user named {username!r} is visible to you.")
    user = found[0]
    if user.id != principal.user_id:
        require(principal.is_superuser or not user.is_superuser, SUPERUSER_KEYS)
        require_manageable(principal, user.is_superuser, bool(found[1]), bool(found[2]))
    if not user.is_staff:
        raise Unprocessable.field("username", STAFF_ONLY)
    owned = (await session.execute(select(UserProfile).where(UserProfile.user_id == user.id))).scalars().all()
    profile = next((p for p in owned if p.account_id == acting.account_id), None)
    if profile is None and principal.is_superuser and not named and len(owned) == 1:
        profile = owned[0]
    if profile is None:
        message = f"{username} has no profile in account {acting.account_number}; "
        if principal.is_superuser and not named and owned:
            message += "they belong to several accounts: name one with accountNumber."
        else:
            message += "add them to the account first."
        raise Unprocessable.field("username", message)
    return user, profile


async def _write(session: AsyncSession, key: ApiKey, values: dict[str, Any]) -> bool:
    """Set what differs (`tags` as names; `key.tag_links` loaded) and flush; True when something changed."""
    values = dict(values)
    tags = values.pop("tags", None)
    changed = assign(key, values)
    if tags is not None and sorted(tags) != sorted(key.tags):
        await tag_service.set_tags(session, key, tags)
        changed = True
    if changed:
        await flush(session)
    return changed


async def _set_active(session: AsyncSession, key: ApiKey, active: bool | None) -> None:
    """A targeted UPDATE of the flag alone (None: toggle, atomically in SQL); never a full-row write."""
    statement = update(ApiKey).where(ApiKey.id == key.id)
    if active is not None:
        statement = statement.where(ApiKey.is_active != active)  # already so: keep updated_at
    value: Any = ~ApiKey.is_active if active is None else active
    await session.execute(
        statement.values(is_active=value, updated_at=utcnow())
        .returning(ApiKey.digest)
        .execution_options(synchronize_session=False)
    )


async def _delete(session: AsyncSession, key: ApiKey) -> None:
    # The tag links cascade (ON DELETE CASCADE).
    await session.execute(delete(ApiKey).where(ApiKey.id == key.id).returning(ApiKey.digest))
    session.expunge(key)


# --- REST ---------------------------------------------------------------------------------------------------


# The page query selects only what a row shows, the owner joined in; tags come in one more query.
_PAGE = (
    select(
        ApiKey.id,
        ApiKey.key_id,
        ApiKey.name,
        ApiKey.description,
        ApiKey.version,
        ApiKey.annotations,
        ApiKey.created_at,
        ApiKey.updated_at,
        ApiKey.is_active,
        ApiKey.last_used_at,
        ApiKey.expires_at,
        ApiKey.digest,
        ApiKey.user_id,
        ApiKey.user_profile_id,
        User.username,
        User.email,
        Account.account_number,
    )
    .join(User, User.id == ApiKey.user_id)
    .join(Account, Account.id == ApiKey.account_id)
)
_TAG_LINKS = Base.metadata.tables["api_key_tag"]
_PAGE_ADAPTER: TypeAdapter[list[ApiKeyRead]] = TypeAdapter(list[ApiKeyRead])


async def list_keys(
    session: AsyncSession,
    principal: Principal,
    page: Page,
    *,
    name: str | None = None,
    is_active: bool | None = None,
    tag: str | None = None,
) -> tuple[list[ApiKeyRead], bool]:
    """A page of named keys in the ownership scope, newest first (and whether more exist).

    One query for the page and one for its tags. Rows are column tuples, not ORM objects: loading a key,
    its user, profile and account as objects cost several times more than both queries.
    """
    statement = _PAGE.where(visible(principal))
    if name is not None:
        statement = statement.where(ApiKey.name == profiles.normalised_query_name(name))
    if is_active is not None:
        statement = statement.where(ApiKey.is_active == is_active)
    if tag is not None:
        statement = statement.where(ApiKey.has_tag(tag.strip()))
    if page.before is not None:
        statement = statement.where(ApiKey.id < page.before)
    statement = statement.order_by(ApiKey.id.desc()).limit(page.limit + 1).offset(page.offset)
    rows = (await session.execute(statement)).all()
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]

    tags: dict[int, list[str]] = {row.id: [] for row in rows}
    if rows:
        links = (
            select(_TAG_LINKS.c.object_id, Tag.name)
            .join(Tag, Tag.id == _TAG_LINKS.c.tag_id)
            .where(_TAG_LINKS.c.object_id.in_(list(tags)))
            .order_by(Tag.name)
        )
        for object_id, tag_name in (await session.execute(links)).all():
            tags[object_id].append(tag_name)
    items = [
        {
            "id": row.id,
            "hashed_id": hashed_id(row.id),
            "record_locator": record_locator(ApiKey.locator_name, row.id),
            "key_id": row.key_id,
            "name": row.name,
            "description": row.description,
            "version": row.version,
            "tags": tags[row.id],
            "annotations": row.annotations,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "is_active": row.is_active,
            "last_used_at": row.last_used_at,
            "expires_at": row.expires_at,
            # The original's identifier: mask_string(digest) with its 8-character default.
            "identifier": text.mask_string(row.digest, string_length=8),
            "user": {"id": row.user_id, "username": row.username},
            "user_profile": {
                "id": row.user_profile_id,
                "user": {"username": row.username, "email": row.email},
                "account": {"account_number": row.account_number},
            },
        }
        for row in rows
    ]
    return _PAGE_ADAPTER.validate_python(items), has_more


async def get_key(session: AsyncSession, principal: Principal, ref: str) -> ApiKey:
    return await get_scoped(session, _ref_statement(principal, ref).options(*READ_OPTIONS), not_found=NOT_FOUND)


async def create_key(session: AsyncSession, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """A key for `data.username` (default: the caller), owned by their profile in the owner account."""
    require(principal.is_staff or principal.is_superuser, CALLER_NOT_STAFF)
    acting = await acting_account(session, principal, data.account_number, where="body")
    user, profile = await _key_owner(
        session, principal, data.username or principal.username, acting, named=data.account_number is not None
    )
    row, plaintext = await issue_key(
        session,
        user=user,
        profile=profile,
        name=data.name,
        description=data.description,
        version=data.version,
        tags=data.tags,
        annotations=data.annotations,
        expires_at=data.expires_at,
        is_active=data.is_active,
    )
    return await _reload(session, row.id), plaintext


async def update_key(session: AsyncSession, principal: Principal, ref: str, data: ApiKeyUpdate) -> ApiKey:
    statement = _ref_statement(principal, ref).options(selectinload(ApiKey.tag_links))
    key = await _writable_key(session, principal, statement, NOT_FOUND)
    changes = data.model_dump(exclude_unset=True, by_alias=False)
    check_expiry(changes.get("expires_at"))
    await _write(session, key, changes)
    return await _reload(session, key.id)


async def set_active(session: AsyncSession, principal: Principal, ref: str, active: bool | None) -> ApiKey:
    """Activate (True), deactivate (False) or toggle (None) a key."""
    key = await _writable_key(session, principal, _ref_statement(principal, ref), NOT_FOUND)
    await _set_active(session, key, active)
    return await _reload(session, key.id)


async def delete_key(session: AsyncSession, principal: Principal, ref: str) -> None:
    await _delete(session, await _writable_key(session, principal, _ref_statement(principal, ref), NOT_FOUND))


# --- the `SmarterAuthToken` manifest ---------------------------------------------------------------------


def manifest_of(key: ApiKey) -> SmarterAuthTokenManifestRead:
    """`key` must be loaded with READ_OPTIONS."""
    return SmarterAuthTokenManifestRead(
        metadata=SmarterAuthTokenMetadataRead(
            name=key.name,
            description=key.description,
            version=key.version,
            tags=key.tags,
            annotations=key.annotations,
        ),
        spec=SmarterAuthTokenSpecRead(
            config=SmarterAuthTokenConfigRead(is_active=key.is_active, username=key.user.username)
        ),
        status=SmarterAuthTokenStatusRead(
            record_locator=key.record_locator,
            created=key.created_at,
            modified=key.updated_at,
            last_used_at=key.last_used_at,
        ),
    )


def _not_found_by_name(name: str) -> str:
    return f"No SmarterAuthToken named {name!r} is visible to you."


def _by_name(principal: Principal, name: str, acting: Acting | None) -> Select[ApiKey]:
    """The caller's key called `name` (names are unique per owner profile, not per account): the caller's
    own first, then one in the acting account, then the oldest.
    """
    normalised = profiles.normalised_query_name(name)
    preference: list[Any] = [(ApiKey.user_id == principal.user_id).desc()]
    if acting is not None:
        preference.append((ApiKey.account_id == acting.account_id).desc())
    return select(ApiKey).where(ApiKey.name == normalised, visible(principal)).order_by(*preference, ApiKey.id).limit(1)


async def apply_manifest(
    session: AsyncSession, principal: Principal, manifest: SmarterAuthTokenManifest, *, acting: Acting | None
) -> tuple[SmarterAuthTokenManifestRead, str | None]:
    """Create the key `metadata.name` of the named staff user of the acting account, or update it.

    Returns (manifest, plaintext): the plaintext of a new key, None when the key existed (applying again
    changes metadata and `isActive` only, and never shows a key again).
    """
    require(principal.is_staff or principal.is_superuser, APPLY_NOT_STAFF)
    meta, config = manifest.metadata, manifest.spec.config
    # A manifest acts in one account (`?accountNumber=` or the default): its owner profile is there.
    user, profile = await _key_owner(session, principal, config.username, acting_required(acting), named=True)
    values: dict[str, Any] = {
        "description": meta.description or "",
        "version": meta.version or "1.0.0",
        "annotations": meta.annotations or [],
        "is_active": config.is_active,
    }
    statement = (
        select(ApiKey)
        .where(ApiKey.user_profile_id == profile.id, ApiKey.name == meta.name, ApiKey.kind == KIND_API_KEY)
        .options(selectinload(ApiKey.tag_links))
    )
    key = (await session.execute(statement)).scalar_one_or_none()
    plaintext: str | None = None
    if key is None:
        key, plaintext = await issue_key(
            session, user=user, profile=profile, name=meta.name, tags=meta.tags or [], **values
        )
    else:
        await _write(session, key, {**values, "tags": meta.tags or []})
    return manifest_of(await _reload(session, key.id)), plaintext


async def describe_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None
) -> SmarterAuthTokenManifestRead:
    statement = _by_name(principal, name, acting).options(*READ_OPTIONS)
    return manifest_of(await get_scoped(session, statement, not_found=_not_found_by_name(name)))


async def manifest_rows(session: AsyncSession, principal: Principal, *, name: str | None) -> list[dict[str, Any]]:
    """The `get` table (the original's columns; no digest, no identifier), newest first."""
    statement = (
        select(
            ApiKey.key_id,
            ApiKey.name,
            ApiKey.description,
            ApiKey.is_active,
            ApiKey.last_used_at,
            ApiKey.created_at,
            ApiKey.updated_at,
        )
        .where(visible(principal))
        .order_by(ApiKey.id.desc())
    )
    if name is not None:
        statement = statement.where(ApiKey.name == profiles.normalised_query_name(name))
    return [
        {
            "keyId": str(row.key_id),
            "name": row.name,
            "description": row.description,
            "isActive": row.is_active,
            "lastUsedAt": row.last_used_at.isoformat() if row.last_used_at else None,
            "createdAt": row.created_at.isoformat(),
            "updatedAt": row.updated_at.isoformat(),
        }
        for row in (await session.execute(statement)).all()
    ]


async def delete_by_name(session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None) -> None:
    key = await _writable_key(session, principal, _by_name(principal, name, acting), _not_found_by_name(name))
    await _delete(session, key)


async def deploy_by_name(
    session: AsyncSession, principal: Principal, *, name: str, acting: Acting | None, active: bool
) -> ApiKey:
    """deploy (active=True) / undeploy (False): activate or deactivate the named key."""
    key = await _writable_key(session, principal, _by_name(principal, name, acting), _not_found_by_name(name))
    await _set_active(session, key, active)
    return await _reload(session, key.id)
