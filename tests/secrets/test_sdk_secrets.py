"""The official SDK (`smarter-api==0.6.0`) against a live server: `client.secrets` (REST list, retrieve,
find) and the `Secret` manifest (apply, describe, the mask round trip, delete), `client.kinds()`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from smarter import Smarter
from smarter.core.exceptions import NotFoundError, ResourceNotFoundError, UnprocessableEntityError
from smarter.models.sam.secret import SAMSecret

from tests import support
from tests.live import live_server
from tests.secrets_scan import SCANNER

pytestmark = pytest.mark.slow

VALUE = "sdk-s3cret-value-never-returned"


@pytest.fixture(scope="module")
def admin() -> Iterator[Smarter]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with (
            live_server(url) as live,
            Smarter(api_key=live.admin_key, base_url=live.base_url, max_retries=0, timeout=30) as client,
        ):
            yield client
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


def manifest(name: str, value: str) -> dict[str, object]:
    SCANNER.remember_password(value)  # the SDK's requests bypass the test client's hook
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "Secret",
        "metadata": {"name": name, "description": "An SDK secret", "version": "1.0.0", "tags": ["sdk"]},
        "spec": {"config": {"value": value, "expiration_date": "2099-01-01T00:00:00+00:00"}},
    }


def test_secrets_through_the_sdk(admin: Smarter) -> None:
    assert "Secret" in {info.api_kind for info in admin.kinds()}

    applied = admin.secrets.apply(manifest("sdk_secret", VALUE))
    assert applied.message == "Secret sdk_secret applied successfully"
    assert VALUE not in applied.model_dump_json()

    listed = admin.secrets.list()
    assert [secret.name for secret in listed] == ["sdk_secret"]
    found = admin.secrets.find("sdk_secret")
    assert found.expires_at is not None
    assert found.expires_at.year == 2099
    assert found.last_accessed is None
    assert found.user_profile is not None
    assert found.user_profile.user is not None
    assert found.user_profile.user.username == "admin"
    assert (found.model_extra or {})["recordLocator"] == f"secret-{found.hashed_id}"
    assert "value" not in found.model_dump()
    assert admin.secrets.retrieve(found.id).name == "sdk_secret"
    assert found.hashed_id is not None
    assert admin.secrets.retrieve(found.hashed_id).id == found.id
    with pytest.raises(ResourceNotFoundError):
        admin.secrets.find("no_such_secret")
    with pytest.raises(NotFoundError):
        admin.secrets.retrieve(found.id + 1000)

    described = admin.secrets.describe("sdk_secret")
    typed = described.to_sam()
    assert isinstance(typed, SAMSecret)
    assert typed.spec.config.value == "********"
    assert typed.status is not None
    assert typed.status.accountNumber == "3141-5926-5359"
    assert typed.status.username == "admin"
    assert typed.status.dependencies == []

    # describe -> apply: the mask keeps the stored value; nothing changes.
    assert admin.secrets.apply(described).message == applied.message
    assert admin.secrets.find("sdk_secret").updated_at == found.updated_at
    with pytest.raises(UnprocessableEntityError):  # the mask cannot create a secret
        admin.secrets.apply(
            {**described.to_sam().to_manifest_dict(), "metadata": {**typed.metadata.model_dump(), "name": "masked"}}
        )

    assert admin.secrets.delete("sdk_secret").message == "Secret sdk_secret deleted successfully"
    with pytest.raises(NotFoundError):
        admin.secrets.describe("sdk_secret")
    assert admin.secrets.list() == []
