"""Declarative base, naming convention, column types and the mixins every model is built from."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, validates
from sqlalchemy.types import TypeDecorator

from app import identifiers, text

# Alembic-docs style, frozen before the first migration so constraints have the same name on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores text and would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Naive datetimes are not stored; give a timezone.")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        # asyncpg already decodes timestamptz as an aware UTC datetime: skip a call per value read.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


# 64-bit ids on PostgreSQL (the original used BigAutoField); SQLite needs INTEGER for its rowid alias.
IdType = BigInteger().with_variant(Integer(), "sqlite")

# JSONB on PostgreSQL, JSON (text) elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class ImmutableFieldError(ValueError):
    """A write to a column that may only be set once (account number, profile user/account...)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is immutable and cannot be changed once set.")
        self.field = field


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        str: String(255),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }

    def _guard_immutable(self, field: str, new: Any) -> Any:
        """Used by `@validates` hooks: once persisted, the value may be assigned again but not changed."""
        state = inspect(self)
        if state.persistent or state.detached:
            if field not in state.dict:
                # Not loaded (expired, deferred, or after a rolled-back savepoint): the stored value is
                # unknown here, so a change cannot be ruled out; refuse rather than overwrite it blindly.
                raise ImmutableFieldError(field)
            old = state.dict[field]
            if old is not None and old != new:
                raise ImmutableFieldError(field)
        return new


class IdMixin:
    """Integer surrogate key plus Smarter's public identifiers derived from it."""

    # The name used in record locators (`pluginmeta-...`); the class name unless a model says otherwise.
    locator_name: ClassVar[str] = ""

    id: Mapped[int] = mapped_column(IdType, primary_key=True, sort_order=-100)

    @property
    def hashed_id(self) -> str:
        return identifiers.hashed_id(self.id)

    @property
    def record_locator(self) -> str:
        return type(self).locator_of(self.id)

    @classmethod
    def locator_of(cls, id_: int) -> str:
        """The record locator of this model's row `id_` (for rows read as plain columns, not objects)."""
        return identifiers.record_locator(cls.locator_name or cls.__name__, id_)


class TimestampMixin:
    """`created_at` / `updated_at`, indexed, timezone-aware (the original's TimestampedModel)."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True, sort_order=90)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True, sort_order=91)

    @property
    def elapsed_updated(self) -> int | None:
        return identifiers.elapsed_updated(self.updated_at)


class MetadataMixin:
    """SAM metadata (the original's MetaDataModel): name, description, semver version, annotations.

    Tags live in the shared `tag` table; each taggable model declares its link table in `app.models.tag`.
    """

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(255), default="1.0.0")
    annotations: Mapped[list[Any]] = mapped_column(default=list)

    @validates("version")
    def _validate_version(self, key: str, value: str) -> str:
        if not text.is_semver(value):
            raise ValueError(f"version {value!r} is not a semantic version (e.g. 1.0.0).")
        return value

    @validates("annotations")
    def _validate_annotations(self, key: str, value: Any) -> list[dict[str, Any]]:
        return text.validate_annotations(value)


class OwnershipMixin:
    """Owned by a user profile; the owner's account id is stored too so scope filters need no join.

    A composite foreign key to `user_profile (id, account_id)` keeps the copy of the account id honest.
    """

    user_profile_id: Mapped[int] = mapped_column(IdType, index=True)
    account_id: Mapped[int] = mapped_column(IdType, index=True)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            ForeignKeyConstraint(
                ["user_profile_id", "account_id"],
                ["user_profile.id", "user_profile.account_id"],
                ondelete="CASCADE",
            ),
            *cls.__extra_table_args__,
        )

    __extra_table_args__: ClassVar[tuple[Any, ...]] = ()
