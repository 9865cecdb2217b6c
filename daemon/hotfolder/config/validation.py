"""Steps 0 and 1 of validation: human units read into numbers (5s, 24h, 100GB, 100Mbps), then
the schema, each error explained in plain words with a hint from the schema's description
and example."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import jsonschema

from hotfolder import units
from hotfolder.config import schema
from hotfolder.config.errors import ConfigError, KeyPath, line_of

# -- step 0: human units (5s, 24h, 100GB, 100Mbps) ---------------------------------------------


def _unit_keys(node: Any) -> dict[str, units.Unit]:
    """Every key the schema marks with a unit, wherever it sits (the names are unique)."""
    found: dict[str, units.Unit] = {}
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            if isinstance(sub, dict) and "unit" in sub:
                found[key] = units.Unit(sub["unit"])
        for sub in node.values():
            found.update(_unit_keys(sub))
    elif isinstance(node, list):
        for sub in node:
            found.update(_unit_keys(sub))
    return found


UNIT_KEYS = _unit_keys(schema.CONFIG)


def read_units(data: Any, filename: str, lines: dict[KeyPath, int]) -> Iterator[ConfigError]:
    """Replace, in place, each unit value with the number (or ascp rate) the code uses; a
    value that cannot be read is an error in plain words and leaves the key out, so the
    schema does not report it a second time."""
    if not isinstance(data, dict):
        return
    places: list[tuple[KeyPath, Any]] = [((), data)]
    watches = data.get("watches")
    if isinstance(watches, list):
        places += [(("watches", i), w) for i, w in enumerate(watches)]
    targets = data.get("targets")
    if isinstance(targets, dict):
        places += [(("targets", name), t) for name, t in targets.items()]
        places += [  # a window's rate (issue 14)
            (("targets", name, "schedule", i), window)
            for name, t in targets.items()
            if isinstance(t, dict) and isinstance(t.get("schedule"), list)
            for i, window in enumerate(t["schedule"])
        ]
    for path, block in places:
        if not isinstance(block, dict):
            continue
        for key in [k for k in block if k in UNIT_KEYS]:
            value = block[key]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                continue  # the schema says what type it wants
            try:
                block[key] = units.parse(UNIT_KEYS[key], value)
            except units.UnitError as err:
                del block[key]
                where = (*path, key)
                yield ConfigError(filename, line_of(where, lines), where, str(err))


# -- step 1: the schema ----------------------------------------------------------------------


def schema_errors(data: Any) -> Iterator[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(schema.CONFIG)
    for error in validator.iter_errors(data):
        if error.validator in ("allOf", "if"):
            continue  # their sub-errors are reported on their own
        yield error


def schema_error(
    error: jsonschema.ValidationError, filename: str, lines: dict[KeyPath, int]
) -> ConfigError:
    path: KeyPath = tuple(error.absolute_path)
    message, hint = _explain(error)
    if error.validator == "additionalProperties":
        extra = _unexpected_keys(error)
        if extra:
            path = (*path, extra[0])
    return ConfigError(filename, line_of(path, lines), path, message, hint)


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(k for k in instance if k not in allowed)


def _explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    kind = error.validator
    sch = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = sorted(sch.get("properties", {}))
        extra = _unexpected_keys(error)
        close = difflib.get_close_matches(extra[0], allowed, n=1) if extra else []
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
        return f"unknown key '{', '.join(extra)}'", hint
    options: Any = error.validator_value
    if kind == "oneOf" and all(set(s) == {"required"} for s in options):
        keys = [s["required"][0] for s in options]
        return (
            f"give exactly one of {', '.join(keys)}",
            "the password (a file or a systemd credential) or an SSH key",
        )
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'", _describe(sch, missing)
    if kind == "type":
        wanted = error.validator_value
        return (
            f"expected {_a(wanted)}, got {_a(_json_type(error.instance))} ({error.instance!r})",
            _example_hint(error),
        )
    if kind in ("enum", "const"):
        value: Any = error.validator_value
        choices = value if kind == "enum" else [value]
        return (
            f"{error.instance!r} is not one of {', '.join(map(str, choices))}",
            _example_hint(error),
        )
    if kind in (
        "minimum",
        "exclusiveMinimum",
        "maximum",
        "minLength",
        "minItems",
        "minProperties",
        "pattern",
    ):
        return f"{error.instance!r} is not allowed: {error.message}", _example_hint(error)
    return error.message, _example_hint(error)


def _describe(sch: dict[str, Any], key: str) -> str:
    prop = sch.get("properties", {}).get(key, {})
    desc = prop.get("description", "")
    example = prop.get("example")
    return f"{desc} Example: {key}: {example}" if example is not None else desc


def _example_hint(error: jsonschema.ValidationError) -> str:
    sch = error.schema if isinstance(error.schema, dict) else {}
    example = sch.get("example")
    desc = sch.get("description", "")
    return f"{desc} Example: {example!r}".strip() if example is not None else desc


def _json_type(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _a(word: Any) -> str:
    word = "/".join(word) if isinstance(word, list) else str(word)
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
