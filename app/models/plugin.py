"""Plugins: metadata plus their selector, LLM prompt settings and static data (one row each)."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, IdType, JSONType, MetadataMixin, OwnershipMixin, TimestampMixin
from app.models.profile import UserProfile
from app.models.tag import TaggableMixin

PLUGIN_CLASSES = ("static", "sql", "api")
PLUGIN_KINDS = {"static": "Plugin", "sql": "SqlPlugin", "api": "ApiPlugin"}
SELECTOR_DIRECTIVES = ("search_terms", "always", "llm")
API_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DATA_LIMIT_MAX = 1000
DEFAULT_DATA_LIMIT = 100

# The original's PluginPrompt defaults, typo included ("helful"): imported rows keep comparing equal.
DEFAULT_PROVIDER = "openai"
DEFAULT_SYSTEM_ROLE = "You are a helful assistant."
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TEMPERATURE = 0.5
DEFAULT_MAX_COMPLETION_TOKENS = 2048
MAX_COMPLETION_TOKENS = 8192
SYSTEM_ROLE_MAX_LENGTH = 32768


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PluginMeta(IdMixin, TimestampMixin, MetadataMixin, OwnershipMixin, TaggableMixin, Base):
    __tablename__ = "plugin_meta"
    __extra_table_args__: ClassVar[tuple[Any, ...]] = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint(_in("plugin_class", PLUGIN_CLASSES), name="plugin_class"),
    )

    plugin_class: Mapped[str] = mapped_column(String(20))

    user_profile: Mapped[UserProfile] = relationship(lazy="raise", overlaps="account")
    prompt: Mapped[PluginPrompt | None] = relationship(
        back_populates="plugin", lazy="raise", uselist=False, passive_deletes=True
    )
    selector: Mapped[PluginSelector | None] = relationship(
        back_populates="plugin", lazy="raise", uselist=False, passive_deletes=True
    )
    data: Mapped[PluginDataStatic | None] = relationship(
        back_populates="plugin", lazy="raise", uselist=False, passive_deletes=True
    )
    sql_data: Mapped[PluginDataSql | None] = relationship(
        back_populates="plugin", lazy="raise", uselist=False, passive_deletes=True
    )
    api_data: Mapped[PluginDataApi | None] = relationship(
        back_populates="plugin", lazy="raise", uselist=False, passive_deletes=True
    )

    @property
    def kind(self) -> str:
        return PLUGIN_KINDS[self.plugin_class]


class _PluginPart(IdMixin, TimestampMixin):
    plugin_id: Mapped[int] = mapped_column(IdType, ForeignKey("plugin_meta.id", ondelete="CASCADE"), unique=True)


class PluginPrompt(_PluginPart, Base):
    __tablename__ = "plugin_prompt"
    __table_args__ = (
        CheckConstraint("temperature >= 0 AND temperature <= 1", name="temperature"),
        CheckConstraint(
            f"max_completion_tokens >= 1 AND max_completion_tokens <= {MAX_COMPLETION_TOKENS}",
            name="max_completion_tokens",
        ),
        CheckConstraint(f"length(system_role) <= {SYSTEM_ROLE_MAX_LENGTH}", name="system_role_length"),
    )

    provider: Mapped[str] = mapped_column(String(255), default=DEFAULT_PROVIDER)
    system_role: Mapped[str] = mapped_column(Text, default=DEFAULT_SYSTEM_ROLE)
    model: Mapped[str] = mapped_column(String(255), default=DEFAULT_MODEL)
    temperature: Mapped[float] = mapped_column(default=DEFAULT_TEMPERATURE)
    max_completion_tokens: Mapped[int] = mapped_column(default=DEFAULT_MAX_COMPLETION_TOKENS)

    plugin: Mapped[PluginMeta] = relationship(back_populates="prompt", lazy="raise")


class PluginSelector(_PluginPart, Base):
    __tablename__ = "plugin_selector"
    __table_args__ = (CheckConstraint(_in("directive", SELECTOR_DIRECTIVES), name="directive"),)

    directive: Mapped[str] = mapped_column(String(20), default="search_terms")
    search_terms: Mapped[list[Any]] = mapped_column(default=list)

    plugin: Mapped[PluginMeta] = relationship(back_populates="selector", lazy="raise")


class PluginDataStatic(_PluginPart, Base):
    __tablename__ = "plugin_data_static"

    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    static_data: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    plugin: Mapped[PluginMeta] = relationship(back_populates="data", lazy="raise")


class _ConnectedData(_PluginPart):
    """What SQL and API plugins share: a description, declared parameters, test values and a row limit.

    `parameters` is the SDK's list of `{name, type, description, enum, default, required}`; `test_values` its
    list of `{name, value}`.
    """

    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[list[Any] | None] = mapped_column(default=None)
    test_values: Mapped[list[Any] | None] = mapped_column(default=None)
    # `limit` is an SQL keyword: the column has a name that needs no quoting in hand-written SQL.
    limit: Mapped[int] = mapped_column("result_limit", default=DEFAULT_DATA_LIMIT)


class PluginDataSql(_ConnectedData, Base):
    __tablename__ = "plugin_data_sql"
    __table_args__ = (CheckConstraint(f"result_limit >= 1 AND result_limit <= {DATA_LIMIT_MAX}", name="limit"),)

    # No ON DELETE: a connection still used by a plugin cannot be deleted (the service answers 409 first).
    connection_id: Mapped[int] = mapped_column(IdType, ForeignKey("connection_sql.id"), index=True)
    sql_query: Mapped[str] = mapped_column(Text)

    plugin: Mapped[PluginMeta] = relationship(back_populates="sql_data", lazy="raise")


class PluginDataApi(_ConnectedData, Base):
    __tablename__ = "plugin_data_api"
    __table_args__ = (
        CheckConstraint(f"result_limit >= 1 AND result_limit <= {DATA_LIMIT_MAX}", name="limit"),
        CheckConstraint(_in("method", API_METHODS), name="method"),
    )

    connection_id: Mapped[int] = mapped_column(IdType, ForeignKey("connection_api.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10), default="GET")
    url_params: Mapped[list[Any] | None] = mapped_column(default=None)
    headers: Mapped[list[Any] | None] = mapped_column(default=None)
    # A JSON object or array (the SDK's `dict | list`).
    body: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)

    plugin: Mapped[PluginMeta] = relationship(back_populates="api_data", lazy="raise")
