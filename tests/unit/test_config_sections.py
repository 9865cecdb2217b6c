"""The typed settings cover the schema, and take every default from it."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import pytest

from hotfolder.config import schema, sections

TYPED: list[tuple[Any, schema.Schema, set[str]]] = [
    (sections.LocalTargetSettings, schema.LOCAL_TARGET, {"type"}),
    (sections.AscpTargetSettings, schema.ASCP_TARGET, {"type"}),
    (sections.NotificationSettings, schema.NOTIFICATIONS, set()),
    (sections.VerifySettings, schema.VERIFY, set()),
    (sections.RetrySettings, schema.RETRY, set()),
    (sections.WebhookSettings, schema.NOTIFICATIONS["properties"]["webhook"], set()),
]


@pytest.mark.parametrize(
    ("typed", "section", "untyped"), TYPED, ids=lambda t: getattr(t, "__name__", "")
)
def test_every_schema_key_has_a_typed_field_with_the_schema_s_default(
    typed: Any, section: schema.Schema, untyped: set[str]
) -> None:
    names = {f.name: f for f in fields(typed)}
    missing = sorted(set(section["properties"]) - untyped - set(names))
    assert missing == [], f"{typed.__name__} has no field for {missing}"
    for key, spec in section["properties"].items():
        if "default" in spec and key in names:
            assert names[key].default is not MISSING, key
            assert names[key].default == spec["default"], key
