"""Users (the original used django.contrib.auth's User)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app import text
from app.models.base import Base, IdMixin, TimestampMixin, utcnow

if TYPE_CHECKING:
    from app.models.profile import UserProfile


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "app_user"  # `user` is reserved in PostgreSQL

    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    # A passlib hash; "" means the user has no usable password (API keys only).
    password: Mapped[str] = mapped_column(String(255), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    is_staff: Mapped[bool] = mapped_column(default=False)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    last_login: Mapped[datetime | None] = mapped_column(default=None)
    date_joined: Mapped[datetime] = mapped_column(default=utcnow)

    profiles: Mapped[list[UserProfile]] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True, order_by="UserProfile.id"
    )

    @validates("username")
    def _validate_username(self, key: str, value: str) -> str:
        if not text.is_username(value):
            raise ValueError("Usernames are 1-150 letters, digits and . @ + - _ characters.")
        return value
