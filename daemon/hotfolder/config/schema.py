"""The one config schema. Every key has a description and an example; the reference in
README/config docs is checked against it, and `check-config` validates against it."""

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

LOGGING: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "Where log lines go and how many.",
    "properties": {
        "target": {
            "enum": ["auto", "journald", "console", "json"],
            "default": "auto",
            "description": "auto: journald under systemd, pretty lines on a terminal, "
            "JSON lines otherwise.",
            "example": "auto",
        },
        "level": {
            "enum": ["debug", "info", "warning", "error"],
            "default": "info",
            "description": "Lowest level written.",
            "example": "info",
        },
    },
}

MODE = {"type": "string", "pattern": "^(0o)?[0-7]{3,4}$"}

PERMISSIONS: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "Who may work with this watch's failed_dir and archive_dir: the folders "
    "and files the daemon puts there get these modes and this group, whatever the umask "
    "(systemd's UMask=0027 would leave editors unable to fix or remove their own failed "
    "drops). Unset: the umask decides. Both folders must then be outside state_dir, which "
    "stays private to the daemon.",
    "properties": {
        "group": {
            "type": "string",
            "minLength": 1,
            "description": "The editors' group; the daemon's user must be a member. Unset: the "
            "group the files were created with.",
            "example": "editors",
        },
        "folder_mode": {
            **MODE,
            "default": "2770",
            "description": "Octal mode of each folder (quoted). 2770: the group may add and "
            "remove files, and new files keep the group; 2775 lets everyone read too.",
            "example": "2770",
        },
        "file_mode": {
            **MODE,
            "default": "0660",
            "description": "Octal mode of each file (quoted), REPORT.txt included.",
            "example": "0660",
        },
    },
}

WATCH: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "path", "target"],
    "description": "One drop folder.",
    "properties": {
        "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_.-]+$",
            "description": "Short unique name, shown in logs (WATCH field) and status.",
            "example": "ooyala",
        },
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "The drop folder. It must exist when the daemon starts.",
            "example": "/srv/dropbox/ooyala",
        },
        "target": {
            "type": "string",
            "description": "Name of an entry under `targets:` that receives this folder's "
            "submissions.",
            "example": "nas",
        },
        "stability_seconds": {
            **DURATION,
            "exclusiveMinimum": 0,
            "default": 5,
            "description": "A file is ready when its size, mtime, ctime and inode have not "
            "changed, and no event arrived, for this long (seconds, or 5s, 2m).",
            "example": "5s",
        },
        "after_success": {
            "enum": ["archive", "delete", "keep"],
            "default": "archive",
            "description": "What happens to the sources once the manifest is delivered.",
            "example": "archive",
        },
        "archive_dir": {
            "type": "string",
            "description": "Where sent submissions go, as <archive_dir>/<YYYY-MM-DD>/<id>/. "
            "Default: <state_dir>/archive/<watch name>.",
            "example": "/srv/dropbox/archive",
        },
        "failed_dir": {
            "type": "string",
            "description": "Where failed submissions go, as <failed_dir>/<id>/ with REPORT.txt "
            "and report.json. Default: <state_dir>/failed/<watch name>.",
            "example": "/srv/dropbox/failed",
        },
        "permissions": PERMISSIONS,
        "incomplete_after": {
            **DURATION,
            "exclusiveMinimum": 0,
            "default": 86400,
            "description": "How long a manifest may wait for files it names before it fails "
            "with the list of missing names (well under the ingest server's 7-day purge); "
            "seconds, or 24h, 2d.",
            "example": "24h",
        },
        "rescan_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 300,
            "description": "A full rescan of the folder runs this often, catching what "
            "events missed.",
            "example": 300,
        },
        "mode": {
            "enum": ["auto", "inotify", "poll"],
            "default": "auto",
            "description": "How changes are noticed. auto: polling on network file systems "
            "(cifs, nfs, sshfs, 9p, ...; read from the mount table), inotify elsewhere. "
            "inotify falls back to polling when the kernel's watch limit is reached.",
            "example": "auto",
        },
        "poll_interval": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 2,
            "description": "Seconds between two polls in poll mode (one stat per folder; "
            "only changed folders are listed again).",
            "example": 2,
        },
        "max_settle": {
            **DURATION,
            "exclusiveMinimum": 0,
            "default": 3600,
            "description": "A file still changing after this long is reported (once); "
            "the submission keeps waiting. Seconds, or 1h, 90m.",
            "example": "1h",
        },
        "max_manifest_bytes": {
            **BYTES,
            "minimum": 1,
            "default": 10485760,
            "description": "A larger manifest is refused unread. Bytes, or 10MB, 10MiB.",
            "example": "10MiB",
        },
        "ignore": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Extra glob patterns (matched on file names) that are never content.",
            "example": ["*.bak"],
        },
    },
}

VERIFY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["backlot"],
    "description": "After a submission completes, poll Backlot until each manifest item's "
    "asset exists (live or processing) or reports an error. Never blocks uploads.",
    "properties": {
        "backlot": {"type": "string", "description": "A name under `backlot:`.", "example": "main"},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 7200,
            "description": "Seconds to keep looking before 'not-found'.",
            "example": 7200,
        },
        "poll_interval": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 60,
            "description": "Seconds between two looks.",
            "example": 60,
        },
    },
}

BACKLOT_ACCOUNT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["api_key"],
    "oneOf": [{"required": ["api_secret_file"]}, {"required": ["api_secret_credential"]}],
    "description": "Backlot V2 API credentials (Backlot > ACCOUNT > Developers).",
    "properties": {
        "api_key": {
            "type": "string",
            "minLength": 1,
            "description": "The API key (<pcode>.<suffix>).",
            "example": "7ab06...xyz",
        },
        **secret_keys(
            "api_secret_file",
            "api_secret_credential",
            "the 40-character API secret",
            "/etc/hotfolder/backlot.secret",
            "backlot-secret",
        ),
        "api_host": {
            "type": "string",
            "default": "https://api.ooyala.com",
            "description": "Where writes go.",
            "example": "https://api.ooyala.com",
        },
        "read_host": {
            "type": "string",
            "default": "https://cdn-api.ooyala.com",
            "description": "Where GETs go (the SDK's cache host).",
            "example": "https://cdn-api.ooyala.com",
        },
    },
}

NOTIFICATIONS: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "E-mail and/or webhook on failures (batched) and a digest of deliveries.",
    "properties": {
        "batch_seconds": {
            "type": "number",
            "minimum": 0,
            "default": 60,
            "description": "Failures within this window go out as one message.",
            "example": 60,
        },
        "digest_every": {
            "type": "number",
            "minimum": 0,
            "default": 86400,
            "description": "Seconds between two digests of deliveries (0: none).",
            "example": 86400,
        },
        "email": {
            "type": "object",
            "additionalProperties": False,
            "required": ["from", "to"],
            "description": "SMTP settings.",
            "properties": {
                "host": {
                    "type": "string",
                    "default": "localhost",
                    "description": "SMTP server.",
                    "example": "smtp.example.com",
                },
                "port": {
                    "type": "integer",
                    "default": 25,
                    "description": "SMTP port.",
                    "example": 587,
                },
                "starttls": {
                    "type": "boolean",
                    "default": False,
                    "description": "Upgrade the connection with STARTTLS.",
                    "example": True,
                },
                "username": {
                    "type": "string",
                    "description": "SMTP login, if any.",
                    "example": "hotfolder",
                },
                **secret_keys(
                    "password_file",
                    "password_credential",
                    "the SMTP password",
                    "/etc/hotfolder/smtp.pass",
                    "smtp-password",
                ),
                "from": {
                    "type": "string",
                    "description": "Sender address.",
                    "example": "hotfolder@example.com",
                },
                "to": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "Recipients.",
                    "example": ["ingest-team@example.com"],
                },
            },
        },
        "webhook": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "description": "A JSON POST per message.",
            "properties": {
                "url": {
                    "type": "string",
                    "description": "Where to POST.",
                    "example": "https://chat.example.com/hooks/ingest",
                },
                "timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 10,
                    "description": "Seconds per POST.",
                    "example": 10,
                },
            },
        },
    },
}

#: Keys every target type takes.
COMMON_TARGET_PROPERTIES: Schema = {
    "verify": VERIFY,
    "quota_bytes": {
        **BYTES,
        "minimum": 1,
        "default": 100_000_000_000,
        "description": "The most this target's account may hold at once (Ooyala/Brightcove "
        "ingest: 100 GB). A submission larger than this fails; one that would push what is in "
        "flight over it waits. Bytes, or 100GB, 1TiB.",
        "example": "100GB",
    },
}

LOCAL_TARGET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "path"],
    "properties": {
        **COMMON_TARGET_PROPERTIES,
        "type": {"const": "local", "description": "A destination folder.", "example": "local"},
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "Destination folder (a NAS export, a transcoder's watch folder). "
            "Files are written as <name>.partial and renamed when complete.",
            "example": "/mnt/ingest",
        },
    },
}

RETRY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "Exponential backoff for errors a later try can get past (aspera-cli's "
    "defaults). Authentication, bad-path and usage errors are never retried.",
    "properties": {
        "tries": {
            "type": "integer",
            "minimum": 1,
            "default": 7,
            "description": "Attempts in all, the first included.",
            "example": 7,
        },
        "initial_delay": {
            "type": "number",
            "minimum": 0,
            "default": 2,
            "description": "Seconds before the first retry.",
            "example": 2,
        },
        "factor": {
            "type": "number",
            "minimum": 1,
            "default": 2,
            "description": "Each delay is the previous one times this.",
            "example": 2,
        },
        "max_delay": {
            "type": "number",
            "minimum": 0,
            "default": 60,
            "description": "No delay is longer than this.",
            "example": 60,
        },
    },
}

# ascp's own form (a plain number is Kbps; 100M, 80%) or bits per second (100Mbps).
RATE: Schema = {"type": ["string", "integer"], "pattern": units.RATE_PATTERN, "unit": Unit.RATE}

ASCP_TARGET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "host", "user"],
    "oneOf": [
        {"required": ["password_file"]},
        {"required": ["password_credential"]},
        {"required": ["key_file"]},
    ],
    "properties": {
        **COMMON_TARGET_PROPERTIES,
        "type": {
            "const": "ascp",
            "description": "IBM Aspera: the real ascp client, driven through its management port.",
            "example": "ascp",
        },
        "host": {
            "type": "string",
            "minLength": 1,
            "description": "The Aspera server.",
            "example": "transfer.ooyala.com",
        },
        "user": {
            "type": "string",
            "minLength": 1,
            "description": "The upload user.",
            "example": "editor_manifest@example.com",
        },
        "ssh_port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "default": 33001,
            "description": "TCP (SSH) port, ascp -P.",
            "example": 33001,
        },
        "udp_port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "default": 33001,
            "description": "FASP UDP port, ascp -O.",
            "example": 33001,
        },
        "destination": {
            "type": "string",
            "minLength": 1,
            "default": "/",
            "description": "Remote folder the files go to.",
            "example": "/",
        },
        **secret_keys(
            "password_file",
            "password_credential",
            "the password (passed to ascp in ASPERA_SCP_PASS, never on the command line)",
            "/etc/hotfolder/aspera.pass",
            "aspera-password",
        ),
        "key_file": {
            "type": "string",
            "description": "SSH private key (ascp -i).",
            "example": "/etc/hotfolder/aspera_id_rsa",
        },
        "sshfp": {
            "type": "string",
            "description": "Expected SSH host key fingerprint "
            "(ascp --check-sshfp); a mismatch fails at once.",
            "example": "SHA256:aZjoXq8gFTrwoQedA/qZUQzwh4+7Ti84ZP7fMfcF0k0",
        },
        "target_rate": {
            **RATE,
            "description": "Target rate, ascp -l: bits per second (100Mbps, 1.5Gbps, 500kbps), "
            "or ascp's own form (a plain number is Kbps; 100M, 80%). Unset: the server's "
            "setting.",
            "example": "100Mbps",
        },
        "min_rate": {
            **RATE,
            "description": "Minimum rate, ascp -m, written as target_rate is.",
            "example": "10Mbps",
        },
        "policy": {
            "enum": ["high", "fair", "low", "fixed"],
            "default": "fair",
            "description": "Bandwidth policy (fixed is discouraged).",
            "example": "fair",
        },
        "cipher": {
            "enum": ["aes-128", "aes-192", "aes-256", "none"],
            "description": "Encryption in transit, ascp -c. Unset: ascp's default.",
            "example": "aes-128",
        },
        "resume": {
            "type": "integer",
            "minimum": 0,
            "maximum": 3,
            "default": 2,
            "description": "ascp -k: 0 re-send, 1 attributes, 2 sparse checksum, 3 full checksum.",
            "example": 2,
        },
        "ascp_path": {
            "type": "string",
            "default": "ascp",
            "description": "The ascp executable (found on PATH if not a path).",
            "example": "/opt/aspera/bin/ascp",
        },
        "retry": RETRY,
        "stall_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 120,
            "description": "Seconds without byte progress before a session is "
            "cancelled and retried (the 'stuck at 99 %' case).",
            "example": 120,
        },
        "connect_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 15,
            "description": "Seconds to wait for ascp to open its management connection.",
            "example": 15,
        },
    },
}

TARGET_TYPES: dict[str, Schema] = {"local": LOCAL_TARGET, "ascp": ASCP_TARGET}

TARGET: Schema = {
    "type": "object",
    "required": ["type"],
    "description": "A place submissions are sent to.",
    "properties": {
        "type": {
            "enum": sorted(TARGET_TYPES),
            "description": "The transfer backend.",
            "example": "local",
        }
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": name}}}, "then": schema}
        for name, schema in TARGET_TYPES.items()
    ],
}

LISTEN = {"type": "string", "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$"}

HTTP: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "The web window: a live status page, /metrics (Prometheus) and /healthz, "
    "served by the daemon. Off unless this key is present. Reading needs no login unless "
    "read_requires_login; retry and hold need a user from users_file.",
    "not": {"required": ["users_file", "users_credential"]},
    "properties": {
        "listen": {
            "oneOf": [LISTEN, {"type": "array", "minItems": 1, "items": LISTEN}],
            "default": "127.0.0.1:8765",
            "description": "host:port to listen on ([::1]:8765 for IPv6), or a list of them. "
            "Anything but loopback shows the page to the network: put a TLS proxy in front.",
            "example": "127.0.0.1:8765",
        },
        "users_file": {
            "type": "string",
            "minLength": 1,
            "description": "Lines of name:argon2-hash (make one with `python -m "
            "hotfolder.window.users NAME`); read at each login.",
            "example": "/etc/hotfolder/http-users",
        },
        "users_credential": {
            "type": "string",
            "minLength": 1,
            "description": "The users file as a systemd credential (LoadCredential=) instead.",
            "example": "http-users",
        },
        "read_requires_login": {
            "type": "boolean",
            "default": False,
            "description": "Pages need a login too (/metrics and /healthz never do).",
            "example": False,
        },
        "public_url": {
            "type": "string",
            "pattern": "^https?://[^\\s]+$",
            "description": "How people reach the page (behind a proxy): links in e-mails use it.",
            "example": "https://ingest.example.com/hotfolder",
        },
    },
}

EDITORS: Schema = {
    "type": "object",
    "additionalProperties": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
    "propertyNames": {"pattern": "^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"},
    "description": "User names (the owner of a dropped manifest) and their e-mail addresses: "
    "a failure is mailed to its editor as well as to notifications.email.to.",
    "example": {"ada": "ada@example.com"},
}

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
