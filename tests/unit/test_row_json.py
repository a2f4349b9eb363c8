"""`views.row_json`: a list row in two pieces whose concatenation is the row, the end shared by an owner's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json

from app.services.plugins.statements import ROW_NAMES
from app.services.plugins.views import row_json

WHEN = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def row(plugin_id: int, **values: Any) -> tuple[Any, ...]:
    defaults: dict[str, Any] = {
        "id": plugin_id,
        "account_id": 7,
        "owner_user_id": 3,
        "name": f"plugin_{plugin_id}",
        "description": "Weather.",
        "version": "1.0.0",
        "tags": None,
        "annotations": [],
        "plugin_class": "static",
        "created_at": WHEN,
        "updated_at": WHEN,
        "username": "owner",
        "email": "owner@example.com",
        "account_number": "1234-5678-9012",
    }
    defaults.update(values)
    return tuple(defaults[name] for name in ROW_NAMES)


def test_the_pieces_make_the_row_and_an_owner_shares_the_end() -> None:
    own, end = row_json(row(1))
    body = from_json(own + end)
    assert body["id"] == 1
    assert body["userProfile"] == {
        "user": {"username": "owner", "email": "owner@example.com"},
        "account": {"accountNumber": "1234-5678-9012"},
    }
    assert body["kind"] == "Plugin"
    assert end.startswith(b',"userProfile":')
    _, other_end = row_json(row(2))
    assert other_end is end  # one copy for every row of the owner


def test_annotations_that_look_like_an_owner_stay_in_the_plugins_own_piece() -> None:
    annotations = [{"x": 1, "userProfile": {"user": "not the owner"}}, {"note": ',"userProfile":'}]
    own, end = row_json(row(3, annotations=annotations, description='say ,"userProfile": here'))
    body = from_json(own + end)
    assert body["annotations"] == annotations
    assert body["description"] == 'say ,"userProfile": here'
    assert body["userProfile"]["user"]["username"] == "owner"
    assert b"not the owner" in own


def test_another_owner_ends_its_rows_its_own_way() -> None:
    _, end = row_json(row(4))
    _, other = row_json(row(5, username="someone", email="someone@example.com"))
    assert other != end
    assert from_json(b"{" + other[1:])["userProfile"]["user"]["username"] == "someone"
