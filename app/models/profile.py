"""A user's membership of an account; it owns what the user creates there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.models.account import Account
from app.models.base import Base, IdMixin, IdType, MetadataMixin, TimestampMixin
from app.models.tag import TaggableMixin
from app.models.user import User


class UserProfile(IdMixin, TimestampMixin, MetadataMixin, TaggableMixin, Base):
    __tablename__ = "user_profile"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id"),
        # Target of the owned tables' composite foreign key (user_profile_id, account_id).
        UniqueConstraint("id", "account_id"),
    )

    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(IdType, ForeignKey("account.id", ondelete="CASCADE"), index=True)
    profile_image_url: Mapped[str | None] = mapped_column(String(200), default=None)
    is_test: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(back_populates="profiles", lazy="raise")
    account: Mapped[Account] = relationship(back_populates="profiles", lazy="raise")

    @validates("user_id", "account_id")
    def _immutable_owner(self, key: str, value: Any) -> Any:
        return self._guard_immutable(key, value)
