"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 02:00:43.318472+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "account",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("account_number", sa.String(length=14), nullable=False),
        sa.Column("is_default_account", sa.Boolean(), nullable=False),
        sa.Column("company_name", sa.String(length=255), nullable=False),
        sa.Column("phone_number", sa.String(length=50), nullable=True),
        sa.Column("address1", sa.String(length=255), nullable=True),
        sa.Column("address2", sa.String(length=255), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=255), nullable=True),
        sa.Column("timezone", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column(
            "annotations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("account_number", name=op.f("uq_account_account_number")),
        sa.UniqueConstraint("name", name=op.f("uq_account_name")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(
            "uq_account_single_default",
            ["is_default_account"],
            unique=True,
            postgresql_where=sa.text("is_default_account"),
            sqlite_where=sa.text("is_default_account"),
        )

    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", sa.String(length=150), nullable=False),
        sa.Column("last_name", sa.String(length=150), nullable=False),
        sa.Column("password", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("last_login", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("date_joined", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_user_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "tag",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
        sa.UniqueConstraint("name", name=op.f("uq_tag_name")),
    )
    op.create_table(
        "account_contact",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=False),
        sa.Column("last_name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("welcomed", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_account_contact_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_contact")),
        sa.UniqueConstraint("account_id", "email", name=op.f("uq_account_contact_account_id_email")),
    )
    with op.batch_alter_table("account_contact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_contact_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_contact_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_contact_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(
            "uq_account_contact_single_primary",
            ["account_id"],
            unique=True,
            postgresql_where=sa.text("is_primary"),
            sqlite_where=sa.text("is_primary"),
        )

    op.create_table(
        "account_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"], ["account.id"], name=op.f("fk_account_tag_object_id_account"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_account_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_account_tag")),
    )
    with op.batch_alter_table("account_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "user_profile",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("profile_image_url", sa.String(length=200), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column(
            "annotations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_user_profile_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_user_profile_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_profile")),
        sa.UniqueConstraint("id", "account_id", name=op.f("uq_user_profile_id_account_id")),
        sa.UniqueConstraint("user_id", "account_id", name=op.f("uq_user_profile_user_id_account_id")),
    )
    with op.batch_alter_table("user_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_profile_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_profile_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_profile_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_profile_user_id"), ["user_id"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("token_key", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column(
            "annotations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind = 'login' OR (user_profile_id IS NOT NULL AND account_id IS NOT NULL)",
            name=op.f("ck_api_key_api_key_owner"),
        ),
        sa.CheckConstraint("kind IN ('api_key', 'login')", name=op.f("ck_api_key_kind")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_api_key_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            name=op.f("fk_api_key_user_profile_id_account_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_key_digest")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_key_key_id")),
        sa.UniqueConstraint("user_profile_id", "name", name=op.f("uq_api_key_user_profile_id_name")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_key_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_key_token_key"), ["token_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_key_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_key_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_key_user_profile_id"), ["user_profile_id"], unique=False)

    op.create_table(
        "plugin_meta",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plugin_class", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column(
            "annotations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("user_profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "plugin_class IN ('static', 'sql', 'api')", name=op.f("ck_plugin_meta_plugin_class")
        ),
        sa.ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            name=op.f("fk_plugin_meta_user_profile_id_account_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_meta")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_plugin_meta_account_id_name")),
    )
    with op.batch_alter_table("plugin_meta", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_meta_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_meta_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_meta_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_meta_user_profile_id"), ["user_profile_id"], unique=False)

    op.create_table(
        "user_profile_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["user_profile.id"],
            name=op.f("fk_user_profile_tag_object_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_user_profile_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_user_profile_tag")),
    )
    with op.batch_alter_table("user_profile_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_profile_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "api_key_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"], ["api_key.id"], name=op.f("fk_api_key_tag_object_id_api_key"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_api_key_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_api_key_tag")),
    )
    with op.batch_alter_table("api_key_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "plugin_data_static",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "static_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("plugin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugin_meta.id"],
            name=op.f("fk_plugin_data_static_plugin_id_plugin_meta"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_data_static")),
        sa.UniqueConstraint("plugin_id", name=op.f("uq_plugin_data_static_plugin_id")),
    )
    with op.batch_alter_table("plugin_data_static", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_data_static_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_data_static_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "plugin_meta_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["plugin_meta.id"],
            name=op.f("fk_plugin_meta_tag_object_id_plugin_meta"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_plugin_meta_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_plugin_meta_tag")),
    )
    with op.batch_alter_table("plugin_meta_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_meta_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "plugin_prompt",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=255), nullable=False),
        sa.Column("system_role", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("temperature", sa.Double(), nullable=False),
        sa.Column("max_completion_tokens", sa.Integer(), nullable=False),
        sa.Column("plugin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(system_role) <= 32768", name=op.f("ck_plugin_prompt_system_role_length")),
        sa.CheckConstraint(
            "max_completion_tokens >= 1 AND max_completion_tokens <= 8192",
            name=op.f("ck_plugin_prompt_max_completion_tokens"),
        ),
        sa.CheckConstraint(
            "temperature >= 0 AND temperature <= 1", name=op.f("ck_plugin_prompt_temperature")
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugin_meta.id"],
            name=op.f("fk_plugin_prompt_plugin_id_plugin_meta"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_prompt")),
        sa.UniqueConstraint("plugin_id", name=op.f("uq_plugin_prompt_plugin_id")),
    )
    with op.batch_alter_table("plugin_prompt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_prompt_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_prompt_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "plugin_selector",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("directive", sa.String(length=20), nullable=False),
        sa.Column(
            "search_terms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("plugin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "directive IN ('search_terms', 'always', 'llm')", name=op.f("ck_plugin_selector_directive")
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugin_meta.id"],
            name=op.f("fk_plugin_selector_plugin_id_plugin_meta"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_selector")),
        sa.UniqueConstraint("plugin_id", name=op.f("uq_plugin_selector_plugin_id")),
    )
    with op.batch_alter_table("plugin_selector", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_selector_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_selector_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("plugin_selector", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_selector_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_selector_created_at"))

    op.drop_table("plugin_selector")
    with op.batch_alter_table("plugin_prompt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_prompt_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_prompt_created_at"))

    op.drop_table("plugin_prompt")
    with op.batch_alter_table("plugin_meta_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_meta_tag_tag_id"))

    op.drop_table("plugin_meta_tag")
    with op.batch_alter_table("plugin_data_static", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_data_static_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_data_static_created_at"))

    op.drop_table("plugin_data_static")
    with op.batch_alter_table("api_key_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_tag_tag_id"))

    op.drop_table("api_key_tag")
    with op.batch_alter_table("user_profile_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_profile_tag_tag_id"))

    op.drop_table("user_profile_tag")
    with op.batch_alter_table("plugin_meta", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_meta_user_profile_id"))
        batch_op.drop_index(batch_op.f("ix_plugin_meta_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_meta_created_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_meta_account_id"))

    op.drop_table("plugin_meta")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_user_profile_id"))
        batch_op.drop_index(batch_op.f("ix_api_key_user_id"))
        batch_op.drop_index(batch_op.f("ix_api_key_updated_at"))
        batch_op.drop_index(batch_op.f("ix_api_key_token_key"))
        batch_op.drop_index(batch_op.f("ix_api_key_created_at"))
        batch_op.drop_index(batch_op.f("ix_api_key_account_id"))

    op.drop_table("api_key")
    with op.batch_alter_table("user_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_profile_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_profile_updated_at"))
        batch_op.drop_index(batch_op.f("ix_user_profile_created_at"))
        batch_op.drop_index(batch_op.f("ix_user_profile_account_id"))

    op.drop_table("user_profile")
    with op.batch_alter_table("account_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_tag_tag_id"))

    op.drop_table("account_tag")
    with op.batch_alter_table("account_contact", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_account_contact_single_primary",
            postgresql_where=sa.text("is_primary"),
            sqlite_where=sa.text("is_primary"),
        )
        batch_op.drop_index(batch_op.f("ix_account_contact_updated_at"))
        batch_op.drop_index(batch_op.f("ix_account_contact_created_at"))
        batch_op.drop_index(batch_op.f("ix_account_contact_account_id"))

    op.drop_table("account_contact")
    op.drop_table("tag")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_updated_at"))
        batch_op.drop_index(batch_op.f("ix_app_user_created_at"))

    op.drop_table("app_user")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_account_single_default",
            postgresql_where=sa.text("is_default_account"),
            sqlite_where=sa.text("is_default_account"),
        )
        batch_op.drop_index(batch_op.f("ix_account_updated_at"))
        batch_op.drop_index(batch_op.f("ix_account_created_at"))

    op.drop_table("account")
