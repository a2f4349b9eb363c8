"""What the unique constraints mean to a client: the field each one guards and the sentence it answers.

Kept with the models so a new constraint and its sentence are written side by side; `app.db_errors` reads
this table to turn an `IntegrityError` into a 409 naming the field.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Index, UniqueConstraint

from app.models import Base

# Sentences for the unique constraints users can hit; others get a generic sentence naming the field.
UNIQUE_MESSAGES: dict[str, tuple[str, str]] = {
    "uq_account_name": ("name", "An account with this name already exists."),
    "uq_account_account_number": ("accountNumber", "An account with this account number already exists."),
    "uq_account_single_default": ("isDefaultAccount", "There is already a default account."),
    "uq_account_contact_account_id_email": ("email", "This account already has a contact with this email."),
    "uq_account_contact_single_primary": ("isPrimary", "This account already has a primary contact."),
    "uq_app_user_username": ("username", "A user with this username already exists."),
    "uq_user_profile_user_id_account_id": ("username", "This user already has a profile in this account."),
    "uq_plugin_meta_account_id_name": ("name", "A plugin with this name already exists in this account."),
    "uq_api_key_user_profile_id_name": ("name", "An API key with this name already exists for this owner."),
    "uq_secret_account_id_name": ("name", "A secret with this name already exists in this account."),
    "uq_connection_sql_account_id_name": ("name", "An SQL connection with this name already exists in this account."),
    "uq_connection_api_account_id_name": ("name", "An API connection with this name already exists in this account."),
}


@lru_cache(maxsize=1)
def unique_constraints() -> dict[tuple[str, tuple[str, ...]], str]:
    """(table, columns) -> constraint name, to read SQLite's messages, which list columns, not names."""
    found: dict[tuple[str, tuple[str, ...]], str] = {}
    for table in Base.metadata.tables.values():
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item, UniqueConstraint) or (isinstance(item, Index) and item.unique):
                columns = tuple(c.name for c in item.columns)
                found[(table.name, columns)] = str(item.name)
    return found


def unique_columns(name: str) -> tuple[str, ...]:
    """The columns of the unique constraint or index called `name` (empty when there is none)."""
    return next((columns for (_, columns), known in unique_constraints().items() if known == name), ())
