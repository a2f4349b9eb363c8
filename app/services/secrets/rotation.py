"""`smarter-core rotate-secrets`: every stored value re-encrypted under the newest key.

Values are re-encrypted token to token (`MultiFernet.rotate`), in batches by id; each row is updated only
if its token is still the one read (a concurrent change of the value wins). Run it after putting a new key
first in `SMARTER_CORE_SECRETS_KEYS`; the old keys may be dropped once it has succeeded.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Secret
from app.services.secrets.cipher import SecretCipher

BATCH = 500


async def rotate_all(session: AsyncSession, cipher: SecretCipher) -> int:
    """Re-encrypt every secret under `cipher`'s newest key; the number of secrets rewritten.

    A token no configured key opens stops the run (`SecretUndecryptable`, 503) before anything of the
    unit of work commits: nothing is half-rotated.
    """
    rotated, after = 0, 0
    while True:
        statement = select(Secret.id, Secret.encrypted_value).where(Secret.id > after).order_by(Secret.id).limit(BATCH)
        rows = (await session.execute(statement)).all()
        if not rows:
            return rotated
        for secret_id, token in rows:
            await session.execute(
                update(Secret)
                .where(Secret.id == secret_id, Secret.encrypted_value == token)
                .values(encrypted_value=cipher.rotate(token), updated_at=Secret.updated_at)
                .execution_options(synchronize_session=False)
            )
            rotated += 1
        after = rows[-1][0]
