"""`schemas.quick_acceptance` accepts only arguments the tool's JSON Schema validator accepts too (it lets a
call skip the validator), over every declared-parameter shape and value kind, and the static tool's schema."""

from __future__ import annotations

import random
from typing import Any

from jsonschema import Draft202012Validator

from app.services.plugin_runtime.schemas import declared_parameters_schema, quick_acceptance

TYPES = ["string", "number", "integer", "boolean", "object", "array", "null", None]
VALUES: list[Any] = ["a", "b", "", 0, 1, 1.0, 2.5, -3, True, False, None, [], [1], {}, {"a": 1}, float("nan")]


def test_it_accepts_nothing_the_validator_refuses() -> None:
    chance = random.Random(17)
    agreed = 0
    for _ in range(3000):
        parameters: list[dict[str, Any]] = []
        for number in range(chance.randint(0, 3)):
            parameter: dict[str, Any] = {"name": f"p{number}", "type": chance.choice(TYPES)}
            if chance.random() < 0.3:
                parameter["enum"] = chance.sample(VALUES, 3)
            if chance.random() < 0.3:
                parameter["default"] = chance.choice(VALUES)
            parameter["required"] = chance.random() < 0.5
            parameters.append(parameter)
        schema = declared_parameters_schema(parameters)
        accepts = quick_acceptance(schema)
        assert accepts is not None
        validator = Draft202012Validator(schema)
        for _ in range(5):
            arguments = {f"p{chance.randint(0, 3)}": chance.choice(VALUES) for _ in range(chance.randint(0, 3))}
            if accepts(arguments):
                assert validator.is_valid(arguments), (schema, arguments)
                agreed += 1
    assert agreed > 1000  # and it does accept the valid calls it is there for


def test_the_static_shape_and_others() -> None:
    static = {
        "type": "object",
        "properties": {"inquiry_type": {"type": "string", "description": "Which part.", "enum": ["a", "b"]}},
        "required": ["inquiry_type"],
        "additionalProperties": False,
    }
    accepts = quick_acceptance(static)
    assert accepts is not None
    assert accepts({"inquiry_type": "a"})
    assert not accepts({"inquiry_type": "c"})
    assert not accepts({})
    assert not accepts({"inquiry_type": "a", "other": 1})
    # Anything but the shapes tools declare is left to the validator.
    assert quick_acceptance({"type": "object", "properties": {}}) is None
    assert quick_acceptance({**static, "additionalProperties": True}) is None
    assert quick_acceptance({**static, "properties": {"x": {"type": "string", "minLength": 2}}}) is None
