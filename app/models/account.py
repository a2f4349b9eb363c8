"""Accounts (tenants) and their contacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app import identifiers
from app.models.base import Base, IdMixin, IdType, MetadataMixin, TimestampMixin
from app.models.tag import TaggableMixin

if TYPE_CHECKING:
    from app.models.profile import UserProfile


class Account(IdMixin, TimestampMixin, MetadataMixin, TaggableMixin, Base):
    __tablename__ = "account"
    __table_args__ = (
        # At most one default account: a partial unique index decides, even under concurrent writes.
        Index(
            "uq_account_single_default",
            "is_default_account",
            unique=True,
            postgresql_where=text("is_default_account"),
            sqlite_where=text("is_default_account"),
        ),
    )

    name: Mapped[str] = mapped_column(String(255), unique=True)
    account_number: Mapped[str] = mapped_column(String(14), unique=True)
    is_default_account: Mapped[bool] = mapped_column(default=False)
    company_name: Mapped[str] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(50), default=None)
    address1: Mapped[str | None] = mapped_column(default=None)
    address2: Mapped[str | None] = mapped_column(default=None)
    city: Mapped[str | None] = mapped_column(default=None)
    state: Mapped[str | None] = mapped_column(default=None)
    postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    country: Mapped[str | None] = mapped_column(default="USA")
    language: Mapped[str | None] = mapped_column(default="EN")
    timezone: Mapped[str | None] = mapped_column(default=None)
    currency: Mapped[str | None] = mapped_column(default="USD")
    is_active: Mapped[bool] = mapped_column(default=True)

    profiles: Mapped[list[UserProfile]] = relationship(back_populates="account", lazy="raise", passive_deletes=True)

    @property
    def is_platform(self) -> bool:
        return self.account_number == identifiers.PLATFORM_ACCOUNT_NUMBER

    @validates("account_number")
    def _validate_account_number(self, key: str, value: str) -> str:
        if not identifiers.is_account_number(value):
            raise ValueError("Account number must be entered in the format: '9999-9999-9999'.")
        return self._guard_immutable(key, value)  # type: ignore[no-any-return]


class AccountContact(IdMixin, TimestampMixin, Base):
    __tablename__ = "account_contact"
    __table_args__ = (
        UniqueConstraint("account_id", "email"),
        # One primary contact per account, database-enforced.
        Index(
            "uq_account_contact_single_primary",
            "account_id",
            unique=True,
            postgresql_where=text("is_primary"),
            sqlite_where=text("is_primary"),
        ),
    )

    account_id: Mapped[int] = mapped_column(IdType, ForeignKey("account.id", ondelete="CASCADE"), index=True)
    first_name: Mapped[str] = mapped_column(String(255))
    last_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    is_primary: Mapped[bool] = mapped_column(default=False)
    is_test: Mapped[bool] = mapped_column(default=False)
    welcomed: Mapped[bool] = mapped_column(default=False)

    account: Mapped[Account] = relationship(lazy="raise")
