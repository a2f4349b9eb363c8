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

from app.services.api_keys.issuing import check_expiry, issue_key, issue_login_token, revoke_login_tokens
from app.services.api_keys.manifests import (
    apply_manifest,
    delete_by_name,
    deploy_by_name,
    describe_by_name,
    manifest_of,
    manifest_rows,
)
from app.services.api_keys.rest import create_key, delete_key, get_key, list_keys, set_active, update_key
from app.services.api_keys.rules import (
    APPLY_NOT_STAFF,
    CALLER_NOT_STAFF,
    EXPIRY_IN_PAST,
    NOT_FOUND,
    READ_OPTIONS,
    STAFF_ONLY,
    SUPERUSER_KEYS,
)
from app.services.api_keys.scopes import visible, writable

__all__ = [
    "APPLY_NOT_STAFF",
    "CALLER_NOT_STAFF",
    "EXPIRY_IN_PAST",
    "NOT_FOUND",
    "READ_OPTIONS",
    "STAFF_ONLY",
    "SUPERUSER_KEYS",
    "apply_manifest",
    "check_expiry",
    "create_key",
    "delete_by_name",
    "delete_key",
    "deploy_by_name",
    "describe_by_name",
    "get_key",
    "issue_key",
    "issue_login_token",
    "list_keys",
    "manifest_of",
    "manifest_rows",
    "revoke_login_tokens",
    "set_active",
    "update_key",
    "visible",
    "writable",
]
