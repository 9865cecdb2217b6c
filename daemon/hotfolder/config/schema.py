"""The one config schema. Every key has a description and an example; the reference in
README/config docs is checked against it, and `check-config` validates against it.

Its sections live beside it (schema_common: shared types and the secret pair; schema_watches;
schema_targets; schema_services: Backlot, notifications, the web window); every name is
importable from here, where it always was.
"""

from __future__ import annotations

from hotfolder.config.schema_common import (
    BYTES,
    CREDENTIAL_NAME,
    DURATION,
    MODE,
    RATE,
    Schema,
    default,
    secret_keys,
)
from hotfolder.config.schema_fleet import JOURNAL
from hotfolder.config.schema_services import (
    BACKLOT_ACCOUNT,
    EDITORS,
    HTTP,
    LISTEN,
    NOTIFICATIONS,
)
from hotfolder.config.schema_targets import (
    ASCP_TARGET,
    COMMON_TARGET_PROPERTIES,
    LOCAL_TARGET,
    RETRY,
    TARGET,
    TARGET_TYPES,
    VERIFY,
)
from hotfolder.config.schema_watches import (
    LOGGING,
    PERMISSIONS,
    WATCH,
)

__all__ = [
    "ASCP_TARGET",
    "BACKLOT_ACCOUNT",
    "BYTES",
    "COMMON_TARGET_PROPERTIES",
    "CONFIG",
    "CREDENTIAL_NAME",
    "DURATION",
    "EDITORS",
    "HTTP",
    "JOURNAL",
    "LISTEN",
    "LOCAL_TARGET",
    "LOGGING",
    "MODE",
    "NOTIFICATIONS",
    "PERMISSIONS",
    "RATE",
    "RETRY",
    "TARGET",
    "TARGET_TYPES",
    "VERIFY",
    "WATCH",
    "Schema",
    "default",
    "secret_keys",
]

CONFIG: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["state_dir", "watches", "targets"],
    "properties": {
        "state_dir": {
            "type": "string",
            "minLength": 1,
            "description": "Where the journal (SQLite) and transfer file lists live. Created if "
            "missing. Never inside a watch folder.",
            "example": "/var/lib/hotfolder",
        },
        "logging": LOGGING,
        "workers": {
            "type": "integer",
            "minimum": 1,
            "maximum": 64,
            "default": 2,
            "description": "Submissions transferred at the same time.",
            "example": 2,
        },
        "shutdown_grace": {
            "type": "number",
            "minimum": 0,
            "default": 30,
            "description": "On SIGTERM, running transfers get this many seconds to finish "
            "before they are cancelled (resumed at the next start). Keep it below the unit's "
            "TimeoutStopSec.",
            "example": 30,
        },
        "watches": {
            "type": "array",
            "minItems": 1,
            "items": WATCH,
            "description": "The drop folders.",
        },
        "notifications": NOTIFICATIONS,
        "http": HTTP,
        "journal": JOURNAL,
        "editors": EDITORS,
        "min_free_bytes": {
            **BYTES,
            "minimum": 0,
            "default": 1_000_000_000,
            "description": "New work pauses while state_dir or an archive_dir has less free "
            "space than this, and resumes when space returns. Bytes, or 1GB, 1GiB.",
            "example": "1GB",
        },
        "backlot": {
            "type": "object",
            "additionalProperties": BACKLOT_ACCOUNT,
            "propertyNames": {"pattern": "^[A-Za-z0-9_.-]+$"},
            "description": "Named Backlot API accounts, for `verify:` and `hotfolder backlot`.",
        },
        "targets": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": TARGET,
            "propertyNames": {"pattern": "^[A-Za-z0-9_.-]+$"},
            "description": "Named destinations that watches send to.",
        },
    },
}
