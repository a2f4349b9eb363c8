"""Failed logins per username, for login throttling across processes (PostgreSQL; SQLite counts in-process)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LoginFailure(Base):
    """One row per username with failed logins in the current window; deleted by a successful login."""

    __tablename__ = "login_failure"

    # Any name a client sends (up to the user table's 150 characters), existing or not.
    username: Mapped[str] = mapped_column(String(150), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[datetime] = mapped_column(index=True)
