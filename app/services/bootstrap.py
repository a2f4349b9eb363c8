"""First start: the platform account, the superuser `admin` with a profile there, and an admin key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import User
from app.services import accounts, api_keys, profiles, users

ADMIN_USERNAME = "admin"
PLATFORM_ACCOUNT_NAME = "smarter_platform"
ADMIN_KEY_NAME = "admin_bootstrap_key"


async def is_empty(session: AsyncSession) -> bool:
    return (await session.execute(select(User.id).limit(1))).first() is None


async def bootstrap(session: AsyncSession, *, admin_password: str | None = None) -> str | None:
    """Create the platform world on an empty database; returns the admin key's plaintext, once.

    Returns None (and changes nothing) when the database already has users.
    """
    if not await is_empty(session):
        return None
    platform = await accounts.create_account(
        session,
        name=PLATFORM_ACCOUNT_NAME,
        company_name="Smarter",
        account_number=PLATFORM_ACCOUNT_NUMBER,
        is_default_account=True,
        description="The Smarter platform account.",
    )
    admin = await users.create_user(
        session,
        username=ADMIN_USERNAME,
        email="admin@smarter.sh",
        first_name="Smarter",
        last_name="Admin",
        password=admin_password,
        is_staff=True,
        is_superuser=True,
    )
    profile = await profiles.add_profile(session, admin, platform)
    _, plaintext = await api_keys.issue_key(
        session,
        user=admin,
        profile=profile,
        name=ADMIN_KEY_NAME,
        description="Issued on first start; printed once.",
    )
    return plaintext
