"""The shared tag table, and the mixin that links a model to it through its own link table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType


class Tag(IdMixin, Base):
    """One row per distinct tag name, shared by every taggable model."""

    __tablename__ = "tag"

    name: Mapped[str] = mapped_column(String(100), unique=True)


class TaggableMixin:
    """`tags` as a list of strings, stored as links to `tag` (one `<table>_tag` link table per model).

    Link tables carry real foreign keys with ON DELETE CASCADE, so deleting an object deletes its links,
    which a single polymorphic link table (the original's taggit) could not guarantee.
    """

    __tablename__: str

    @declared_attr
    @classmethod
    def tag_links(cls) -> Mapped[list[Tag]]:
        owner = cls.__tablename__
        link = Table(
            f"{owner}_tag",
            Base.metadata,
            Column("object_id", IdType, ForeignKey(f"{owner}.id", ondelete="CASCADE"), primary_key=True),
            Column("tag_id", IdType, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
        )
        return relationship(Tag, secondary=link, lazy="raise", order_by=Tag.name)

    @property
    def tags(self) -> list[str]:
        return [tag.name for tag in self.tag_links]

    @classmethod
    def has_tag(cls, name: str | BindParameter[str]) -> Any:
        """SQL filter: rows that carry the tag `name` (an EXISTS over the link table)."""
        return cls.tag_links.any(Tag.name == name)
