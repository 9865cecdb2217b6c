"""What the schema's sections share: the `default` reader, unit-bearing value types, the secret
pair (a file or a systemd credential), file modes."""

from __future__ import annotations

from typing import Any

from hotfolder import units
from hotfolder.units import Unit

Schema = dict[str, Any]


def default(section: Schema, key: str) -> Any:
    """The default of `key` in `section` (a schema object, or a dict of properties): the one
    place defaults are written, read by the typed settings (sections.py) and the loader."""
    properties = section.get("properties", section)
    return properties[key]["default"]


#: A systemd credential's name: it is joined onto $CREDENTIALS_DIRECTORY, so no '/' or '..'.
CREDENTIAL_NAME = "^[A-Za-z0-9_.-]+$"


def secret_keys(
    file_key: str, credential_key: str, what: str, file_example: str, credential_example: str
) -> Schema:
    """The pair of keys every secret is given by: a file, or a systemd credential's name."""
    return {
        file_key: {
            "type": "string",
            "description": f"A file holding {what} (read each time it is needed, so a rotated "
            "secret needs no restart).",
            "example": file_example,
        },
        credential_key: {
            "type": "string",
            "pattern": CREDENTIAL_NAME,
            "description": f"Name of a systemd credential (LoadCredential=) holding {what}.",
            "example": credential_example,
        },
    }


# Keys people write with units (`5s`, `24h`, `100GB`, `100Mbps`); plain numbers stay valid.
# config.py turns the strings into numbers (units.py) before the rest of the schema applies.
DURATION: Schema = {
    "type": ["number", "string"],
    "pattern": units.DURATION_PATTERN,
    "unit": Unit.DURATION,
}
BYTES: Schema = {"type": ["integer", "string"], "pattern": units.BYTES_PATTERN, "unit": Unit.BYTES}

MODE = {"type": "string", "pattern": "^(0o)?[0-7]{3,4}$"}

# ascp's own form (a plain number is Kbps; 100M, 80%) or bits per second (100Mbps).
RATE: Schema = {"type": ["string", "integer"], "pattern": units.RATE_PATTERN, "unit": Unit.RATE}
