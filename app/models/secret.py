"""Secrets: a value (a password, an API key) that connections use, stored only encrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, MetadataMixin, OwnershipMixin, TimestampMixin
from app.models.profile import UserProfile
from app.models.tag import TaggableMixin

# Plaintext values are at most this long (characters); the stored token is longer (cipher overhead, base64).
SECRET_VALUE_MAX_LENGTH = 65536


class Secret(IdMixin, TimestampMixin, MetadataMixin, OwnershipMixin, TaggableMixin, Base):
    __tablename__ = "secret"
    __extra_table_args__: ClassVar[tuple[Any, ...]] = (
        UniqueConstraint("account_id", "name"),
        # The target of the connections' composite foreign keys: a connection may only use a secret of its
        # own account, which the database itself guarantees.
        UniqueConstraint("id", "account_id"),
    )

    # The authenticated cipher's token (Fernet: url-safe base64 text); never the plaintext.
    encrypted_value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_accessed: Mapped[datetime | None] = mapped_column(default=None)

    user_profile: Mapped[UserProfile] = relationship(lazy="raise", overlaps="account")
