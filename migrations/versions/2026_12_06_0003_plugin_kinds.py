"""secrets, SQL and API connections, SQL and API plugin data

Revision ID: 0003_plugin_kinds
Revises: 0002_login_failure
Create Date: 2026-12-06 10:01:01.623620+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "0003_plugin_kinds"
down_revision: str | None = "0002_login_failure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on PostgreSQL, JSON (text) elsewhere, as `app.models.base.JSONType`.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "secret",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("encrypted_value", sa.Text(), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_accessed", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("annotations", JSON, nullable=False),
        sa.Column("user_profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            name=op.f("fk_secret_user_profile_id_account_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_secret_account_id_name")),
        sa.UniqueConstraint("id", "account_id", name=op.f("uq_secret_id_account_id")),
    )
    with op.batch_alter_table("secret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_secret_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_secret_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_secret_user_profile_id"), ["user_profile_id"], unique=False)

    op.create_table(
        "connection_api",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("auth_method", sa.String(length=20), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("api_key_secret_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("proxy_protocol", sa.String(length=10), nullable=True),
        sa.Column("proxy_host", sa.String(length=255), nullable=True),
        sa.Column("proxy_port", sa.Integer(), nullable=True),
        sa.Column("proxy_username", sa.String(length=255), nullable=True),
        sa.Column("proxy_password_secret_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("annotations", JSON, nullable=False),
        sa.Column("user_profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("timeout >= 1 AND timeout <= 30", name=op.f("ck_connection_api_timeout")),
        sa.ForeignKeyConstraint(
            ["api_key_secret_id", "account_id"],
            ["secret.id", "secret.account_id"],
            name=op.f("fk_connection_api_api_key_secret_id_account_id_secret"),
        ),
        sa.ForeignKeyConstraint(
            ["proxy_password_secret_id", "account_id"],
            ["secret.id", "secret.account_id"],
            name=op.f("fk_connection_api_proxy_password_secret_id_account_id_secret"),
        ),
        sa.ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            name=op.f("fk_connection_api_user_profile_id_account_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_api")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_connection_api_account_id_name")),
    )
    with op.batch_alter_table("connection_api", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_api_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_api_api_key_secret_id"), ["api_key_secret_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_api_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_connection_api_proxy_password_secret_id"), ["proxy_password_secret_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_connection_api_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_api_user_profile_id"), ["user_profile_id"], unique=False)

    op.create_table(
        "connection_sql",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("db_engine", sa.String(length=100), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("database", sa.String(length=1024), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_secret_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("authentication_method", sa.String(length=20), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("use_ssl", sa.Boolean(), nullable=False),
        sa.Column("ssl_ca", sa.Text(), nullable=True),
        sa.Column("ssl_cert", sa.Text(), nullable=True),
        sa.Column("ssl_key", sa.Text(), nullable=True),
        sa.Column("pool_size", sa.Integer(), nullable=False),
        sa.Column("max_overflow", sa.Integer(), nullable=False),
        sa.Column("proxy_host", sa.String(length=255), nullable=True),
        sa.Column("proxy_port", sa.Integer(), nullable=True),
        sa.Column("proxy_username", sa.String(length=255), nullable=True),
        sa.Column("proxy_password_secret_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("ssh_known_hosts", sa.Text(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("annotations", JSON, nullable=False),
        sa.Column("user_profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("timeout >= 1 AND timeout <= 30", name=op.f("ck_connection_sql_timeout")),
        sa.ForeignKeyConstraint(
            ["password_secret_id", "account_id"],
            ["secret.id", "secret.account_id"],
            name=op.f("fk_connection_sql_password_secret_id_account_id_secret"),
        ),
        sa.ForeignKeyConstraint(
            ["proxy_password_secret_id", "account_id"],
            ["secret.id", "secret.account_id"],
            name=op.f("fk_connection_sql_proxy_password_secret_id_account_id_secret"),
        ),
        sa.ForeignKeyConstraint(
            ["user_profile_id", "account_id"],
            ["user_profile.id", "user_profile.account_id"],
            name=op.f("fk_connection_sql_user_profile_id_account_id_user_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_sql")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_connection_sql_account_id_name")),
    )
    with op.batch_alter_table("connection_sql", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_sql_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_sql_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_sql_password_secret_id"), ["password_secret_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_connection_sql_proxy_password_secret_id"), ["proxy_password_secret_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_connection_sql_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_sql_user_profile_id"), ["user_profile_id"], unique=False)

    op.create_table(
        "secret_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"], ["secret.id"], name=op.f("fk_secret_tag_object_id_secret"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tag_id"], ["tag.id"], name=op.f("fk_secret_tag_tag_id_tag"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_secret_tag")),
    )
    with op.batch_alter_table("secret_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "connection_api_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["connection_api.id"],
            name=op.f("fk_connection_api_tag_object_id_connection_api"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_connection_api_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_connection_api_tag")),
    )
    with op.batch_alter_table("connection_api_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_api_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "connection_sql_tag",
        sa.Column("object_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["connection_sql.id"],
            name=op.f("fk_connection_sql_tag_object_id_connection_sql"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_connection_sql_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("object_id", "tag_id", name=op.f("pk_connection_sql_tag")),
    )
    with op.batch_alter_table("connection_sql_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_sql_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "plugin_data_api",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("url_params", JSON, nullable=True),
        sa.Column("headers", JSON, nullable=True),
        sa.Column("body", JSON, nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", JSON, nullable=True),
        sa.Column("test_values", JSON, nullable=True),
        sa.Column("result_limit", sa.Integer(), nullable=False),
        sa.Column("plugin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')", name=op.f("ck_plugin_data_api_method")
        ),
        sa.CheckConstraint("result_limit >= 1 AND result_limit <= 1000", name=op.f("ck_plugin_data_api_limit")),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connection_api.id"], name=op.f("fk_plugin_data_api_connection_id_connection_api")
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"], ["plugin_meta.id"], name=op.f("fk_plugin_data_api_plugin_id_plugin_meta"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_data_api")),
        sa.UniqueConstraint("plugin_id", name=op.f("uq_plugin_data_api_plugin_id")),
    )
    with op.batch_alter_table("plugin_data_api", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_data_api_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_data_api_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_data_api_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "plugin_data_sql",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sql_query", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", JSON, nullable=True),
        sa.Column("test_values", JSON, nullable=True),
        sa.Column("result_limit", sa.Integer(), nullable=False),
        sa.Column("plugin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("result_limit >= 1 AND result_limit <= 1000", name=op.f("ck_plugin_data_sql_limit")),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connection_sql.id"], name=op.f("fk_plugin_data_sql_connection_id_connection_sql")
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"], ["plugin_meta.id"], name=op.f("fk_plugin_data_sql_plugin_id_plugin_meta"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_data_sql")),
        sa.UniqueConstraint("plugin_id", name=op.f("uq_plugin_data_sql_plugin_id")),
    )
    with op.batch_alter_table("plugin_data_sql", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plugin_data_sql_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_data_sql_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_plugin_data_sql_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plugin_data_sql", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_data_sql_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_data_sql_created_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_data_sql_connection_id"))

    op.drop_table("plugin_data_sql")
    with op.batch_alter_table("plugin_data_api", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plugin_data_api_updated_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_data_api_created_at"))
        batch_op.drop_index(batch_op.f("ix_plugin_data_api_connection_id"))

    op.drop_table("plugin_data_api")
    with op.batch_alter_table("connection_sql_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_sql_tag_tag_id"))

    op.drop_table("connection_sql_tag")
    with op.batch_alter_table("connection_api_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_api_tag_tag_id"))

    op.drop_table("connection_api_tag")
    with op.batch_alter_table("secret_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_tag_tag_id"))

    op.drop_table("secret_tag")
    with op.batch_alter_table("connection_sql", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_sql_user_profile_id"))
        batch_op.drop_index(batch_op.f("ix_connection_sql_updated_at"))
        batch_op.drop_index(batch_op.f("ix_connection_sql_proxy_password_secret_id"))
        batch_op.drop_index(batch_op.f("ix_connection_sql_password_secret_id"))
        batch_op.drop_index(batch_op.f("ix_connection_sql_created_at"))
        batch_op.drop_index(batch_op.f("ix_connection_sql_account_id"))

    op.drop_table("connection_sql")
    with op.batch_alter_table("connection_api", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_api_user_profile_id"))
        batch_op.drop_index(batch_op.f("ix_connection_api_updated_at"))
        batch_op.drop_index(batch_op.f("ix_connection_api_proxy_password_secret_id"))
        batch_op.drop_index(batch_op.f("ix_connection_api_created_at"))
        batch_op.drop_index(batch_op.f("ix_connection_api_api_key_secret_id"))
        batch_op.drop_index(batch_op.f("ix_connection_api_account_id"))

    op.drop_table("connection_api")
    with op.batch_alter_table("secret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_user_profile_id"))
        batch_op.drop_index(batch_op.f("ix_secret_updated_at"))
        batch_op.drop_index(batch_op.f("ix_secret_created_at"))
        batch_op.drop_index(batch_op.f("ix_secret_account_id"))

    op.drop_table("secret")
