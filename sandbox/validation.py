"""Server-side constraint checks from the botocore model, as the service applies them.

botocore only checks `min` client-side (docs/aws-behaviours.md §1), so max/pattern/enum violations reach the service
and come back as `ValidationException: N validation error(s) detected: Value 'x' at 'field' failed to satisfy
constraint: ...`. We reproduce that message format.
"""

from __future__ import annotations

import functools
import re

from sandbox.awsproto import AwsError, service_model


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _check(shapes: dict, shape_name: str, value: object, path: str, errors: list[str]) -> None:
    shape = shapes[shape_name]
    kind = shape["type"]
    shown = value if not isinstance(value, list | dict) else value
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for req in shape.get("required", []):
            if value.get(req) is None:
                errors.append(
                    f"Value null at '{(path + '.' if path else '') + _camel(req)}' failed to satisfy "
                    "constraint: Member must not be null"
                )
        for member, spec in shape.get("members", {}).items():
            if member in value and value[member] is not None:
                _check(shapes, spec["shape"], value[member], (path + "." if path else "") + _camel(member), errors)
    elif kind == "list":
        if not isinstance(value, list):
            return
        if "max" in shape and len(value) > shape["max"]:
            errors.append(
                f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length less "
                f"than or equal to {shape['max']}"
            )
        if "min" in shape and len(value) < shape["min"]:
            errors.append(
                f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length greater "
                f"than or equal to {shape['min']}"
            )
        for i, item in enumerate(value, 1):
            _check(shapes, shape["member"]["shape"], item, f"{path}.{i}.member", errors)
    elif kind == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                _check(shapes, shape["value"]["shape"], v, f"{path}.{k}", errors)
    elif kind == "string":
        if not isinstance(value, str):
            return
        if "max" in shape and len(value) > shape["max"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have length less "
                f"than or equal to {shape['max']}"
            )
        if "min" in shape and len(value) < shape["min"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have length greater "
                f"than or equal to {shape['min']}"
            )
        if "enum" in shape and value not in shape["enum"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value "
                f"set: [{', '.join(shape['enum'])}]"
            )
        pattern = shape.get("pattern")
        regex = _regex(pattern) if pattern else None
        if regex is not None and not regex.search(value):
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy regular "
                f"expression pattern: {pattern}"
            )
    elif kind in ("integer", "long"):
        if not isinstance(value, int):
            return
        if "max" in shape and value > shape["max"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less "
                f"than or equal to {shape['max']}"
            )
        if "min" in shape and value < shape["min"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater "
                f"than or equal to {shape['min']}"
            )


def validate_input(service: str, operation: str, params: dict) -> None:
    """Raise ValidationException listing every constraint `params` violates."""
    model = service_model(service)
    if not model or operation not in model["operations"]:
        return
    input_shape = model["operations"][operation].get("input", {}).get("shape")
    if not input_shape:
        return
    errors: list[str] = []
    _check(model["shapes"], input_shape, params, "", errors)
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        raise AwsError("ValidationException", f"{len(errors)} validation {noun} detected: " + "; ".join(errors))


def check_max(value: int | None, limit: int, field_name: str) -> None:
    """A live-service limit tighter than the model (e.g. DescribeInstancePatchStates MaxResults,
    docs/aws-behaviours.md §6)."""
    if value is not None and value > limit:
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{field_name}' failed "
            f"to satisfy constraint: Member must have value less than or equal to {limit}",
        )
