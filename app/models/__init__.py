"""Every model, imported here so `Base.metadata` is complete for Alembic and the app."""

from app.models.account import Account, AccountContact
from app.models.api_key import KIND_API_KEY, KIND_LOGIN, ApiKey
from app.models.base import Base, ImmutableFieldError
from app.models.connection import ApiConnection, SqlConnection
from app.models.login_failure import LoginFailure
from app.models.plugin import (
    PluginDataApi,
    PluginDataSql,
    PluginDataStatic,
    PluginMeta,
    PluginPrompt,
    PluginSelector,
)
from app.models.profile import UserProfile
from app.models.secret import Secret
from app.models.tag import Tag
from app.models.user import User

__all__ = [
    "KIND_API_KEY",
    "KIND_LOGIN",
    "Account",
    "AccountContact",
    "ApiConnection",
    "ApiKey",
    "Base",
    "ImmutableFieldError",
    "LoginFailure",
    "PluginDataApi",
    "PluginDataSql",
    "PluginDataStatic",
    "PluginMeta",
    "PluginPrompt",
    "PluginSelector",
    "Secret",
    "SqlConnection",
    "Tag",
    "User",
    "UserProfile",
]
