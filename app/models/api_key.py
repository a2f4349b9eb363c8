"""API keys and login tokens (the original's SmarterAuthToken, on knox): one table, two kinds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.models.base import Base, IdMixin, IdType, MetadataMixin, TimestampMixin
from app.models.profile import UserProfile
from app.models.tag import TaggableMixin
from app.models.user import User

KIND_API_KEY = "api_key"
KIND_LOGIN = "login"


class ApiKey(IdMixin, TimestampMixin, MetadataMixin, TaggableMixin, Base):
    """Only `token_key` (the first characters, not secret) and the SHA-512 `digest` of a key are stored."""

    __tablename__ = "api_key"
    locator_name: ClassVar[str] = "SmarterAuthToken"
    __table_args__ = (
        UniqueConstraint("user_profile_id", "name"),
        ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(f"kind IN ('{KIND_API_KEY}', '{KIND_LOGIN}')", name="kind"),
        # Named keys always have an owner profile; a login token may belong to a user with no profile.
        CheckConstraint(
            f"kind = '{KIND_LOGIN}' OR (user_profile_id IS NOT NULL AND account_id IS NOT NULL)",
            name="api_key_owner",
        ),
    )

    key_id: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4, unique=True)
    token_key: Mapped[str] = mapped_column(String(32), index=True)
    digest: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default=KIND_API_KEY)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    user_profile_id: Mapped[int | None] = mapped_column(IdType, index=True)
    account_id: Mapped[int | None] = mapped_column(IdType, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(default=True)

    user: Mapped[User] = relationship(lazy="raise")
    user_profile: Mapped[UserProfile | None] = relationship(lazy="raise", overlaps="account")

    @property
    def identifier(self) -> str:
        """`****` + the digest's last 4 characters (the original meant this but forgot to return it)."""
        return "****" + self.digest[-4:]

    @validates("digest", "token_key", "user_id")
    def _immutable_secret(self, key: str, value: Any) -> Any:
        return self._guard_immutable(key, value)
