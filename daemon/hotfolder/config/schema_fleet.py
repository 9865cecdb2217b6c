"""The schema of the `journal:` block: several workstations on one shared drop folder keep
their journal in PostgreSQL (issue 13). Absent: the SQLite journal in state_dir, as always."""

from __future__ import annotations

from hotfolder.config.schema_common import Schema, secret_keys

#: A node's name is shown by `hotfolder nodes` and written into every history line.
NODE_NAME = "^[A-Za-z0-9_.-]{1,63}$"

JOURNAL: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "not": {"required": ["password_file", "password_credential"]},
    "description": "The journal in PostgreSQL, for workstations sharing one drop folder "
    "(issue 13; see README 'Several workstations'). Off "
    "unless present: the journal is then SQLite in state_dir.",
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^postgres(ql)?://[^\\s]+$",
            "description": "The database, without a password (it is shown in logs and by "
            "hotfolder status).",
            "example": "postgresql://hotfolder@db.example.com/hotfolder",
        },
        "node": {
            "type": "string",
            "pattern": NODE_NAME,
            "description": "This workstation's name in the fleet (unique); the host name "
            "unless given.",
            "example": "ingest-ws-2",
        },
        "lease_seconds": {
            "type": "number",
            "minimum": 3,
            "maximum": 3600,
            "default": 30,
            "description": "How long a node's claim on a submission outlives its last "
            "heartbeat (renewed every third of it): a node that dies or loses the database "
            "has its work taken over by another node after this long.",
            "example": 30,
        },
        **secret_keys(
            "password_file",
            "password_credential",
            "the database role's password",
            "/etc/hotfolder/journal.pass",
            "journal-password",
        ),
    },
}
