"""The secret domain, one job per module (imports run down this list):

- `cipher`: the authenticated cipher (Fernet/MultiFernet) and its keys (setting, or SQLite's key file).
- `rules`: scopes, messages, the expiry rule, and the errors a use of a secret raises.
- `usage`: the connections that use a secret (what blocks a delete; a manifest's `dependencies`).
- `reveal`: **the one call other domains use**: `reveal(session, cipher, secret_id, *, now) -> str`.
- `reads`: rows as the API shows them (never the value); `ids_by_name` / `names_by_id` for references.
- `writes`: create, change (rotate the value), delete, for REST and manifests.
- `manifests`: the `Secret` kind's apply, describe, delete and `get` table.
- `rotation`: re-encrypting every value under the newest key (`smarter-core rotate-secrets`).
"""

from app.services.secrets.cipher import SecretCipher, SecretsNotConfigured, SecretUndecryptable, generate_key
from app.services.secrets.reads import get_secret, ids_by_name, list_secrets, names_by_id
from app.services.secrets.reveal import reveal
from app.services.secrets.rotation import rotate_all
from app.services.secrets.rules import SecretInUse, SecretUnavailable
from app.services.secrets.usage import connections_using
from app.services.secrets.writes import create_secret, delete_secret, update_secret

__all__ = [
    "SecretCipher",
    "SecretInUse",
    "SecretUnavailable",
    "SecretUndecryptable",
    "SecretsNotConfigured",
    "connections_using",
    "create_secret",
    "delete_secret",
    "generate_key",
    "get_secret",
    "ids_by_name",
    "list_secrets",
    "names_by_id",
    "reveal",
    "rotate_all",
    "update_secret",
]
