"""Connections plugins call: SQL databases and HTTP APIs. Credentials are references to secrets, never values."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, MetadataMixin, OwnershipMixin, TimestampMixin
from app.models.profile import UserProfile
from app.models.tag import TaggableMixin

CONNECTION_TIMEOUT_MAX = 30


def _secret_reference(column: str) -> ForeignKeyConstraint:
    """`column` names a secret of the connection's own account (composite key: the database refuses another
    account's secret, and a secret still referenced cannot be deleted)."""
    return ForeignKeyConstraint([column, "account_id"], ["secret.id", "secret.account_id"])


class SqlConnection(IdMixin, TimestampMixin, MetadataMixin, OwnershipMixin, TaggableMixin, Base):
    __tablename__ = "connection_sql"
    __extra_table_args__: ClassVar[tuple[Any, ...]] = (
        UniqueConstraint("account_id", "name"),
        _secret_reference("password_secret_id"),
        _secret_reference("proxy_password_secret_id"),
        CheckConstraint(f"timeout >= 1 AND timeout <= {CONNECTION_TIMEOUT_MAX}", name="timeout"),
    )

    db_engine: Mapped[str] = mapped_column(String(100))
    hostname: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int | None] = mapped_column(default=None)
    database: Mapped[str] = mapped_column(String(1024))
    username: Mapped[str | None] = mapped_column(String(255), default=None)
    password_secret_id: Mapped[int | None] = mapped_column(IdType, default=None, index=True)
    authentication_method: Mapped[str] = mapped_column(String(20), default="none")
    timeout: Mapped[int] = mapped_column(default=CONNECTION_TIMEOUT_MAX)
    use_ssl: Mapped[bool] = mapped_column(default=False)
    ssl_ca: Mapped[str | None] = mapped_column(Text, default=None)
    ssl_cert: Mapped[str | None] = mapped_column(Text, default=None)
    ssl_key: Mapped[str | None] = mapped_column(Text, default=None)
    pool_size: Mapped[int] = mapped_column(default=5)
    max_overflow: Mapped[int] = mapped_column(default=10)
    proxy_host: Mapped[str | None] = mapped_column(String(255), default=None)
    proxy_port: Mapped[int | None] = mapped_column(default=None)
    proxy_username: Mapped[str | None] = mapped_column(String(255), default=None)
    proxy_password_secret_id: Mapped[int | None] = mapped_column(IdType, default=None, index=True)
    ssh_known_hosts: Mapped[str | None] = mapped_column(Text, default=None)

    user_profile: Mapped[UserProfile] = relationship(lazy="raise", overlaps="account")


class ApiConnection(IdMixin, TimestampMixin, MetadataMixin, OwnershipMixin, TaggableMixin, Base):
    __tablename__ = "connection_api"
    __extra_table_args__: ClassVar[tuple[Any, ...]] = (
        UniqueConstraint("account_id", "name"),
        _secret_reference("api_key_secret_id"),
        _secret_reference("proxy_password_secret_id"),
        CheckConstraint(f"timeout >= 1 AND timeout <= {CONNECTION_TIMEOUT_MAX}", name="timeout"),
    )

    base_url: Mapped[str] = mapped_column(String(2048))
    auth_method: Mapped[str] = mapped_column(String(20), default="none")
    # `basic` auth sends `username:<secret>`; the SDK's model keeps extra fields, so `username` round-trips.
    username: Mapped[str | None] = mapped_column(String(255), default=None)
    api_key_secret_id: Mapped[int | None] = mapped_column(IdType, default=None, index=True)
    timeout: Mapped[int] = mapped_column(default=CONNECTION_TIMEOUT_MAX)
    proxy_protocol: Mapped[str | None] = mapped_column(String(10), default=None)
    proxy_host: Mapped[str | None] = mapped_column(String(255), default=None)
    proxy_port: Mapped[int | None] = mapped_column(default=None)
    proxy_username: Mapped[str | None] = mapped_column(String(255), default=None)
    proxy_password_secret_id: Mapped[int | None] = mapped_column(IdType, default=None, index=True)

    user_profile: Mapped[UserProfile] = relationship(lazy="raise", overlaps="account")
