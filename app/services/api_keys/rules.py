"""The API key domain's sentences and the columns a key response loads with it."""

from __future__ import annotations

from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from app.models import Account, ApiKey, User, UserProfile

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
