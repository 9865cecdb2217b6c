"""The schema of targets: keys every type takes (quota, verify), then one block per type."""

from __future__ import annotations

from hotfolder.config.schema_common import BYTES, RATE, Schema, secret_keys

# A window's days, from and to (issue 14); transfer.schedule reads the same patterns.
_DAY = "(?:mon|tue|wed|thu|fri|sat|sun)"
DAYS_PATTERN = rf"^\s*{_DAY}(?:\s*-\s*{_DAY})?(?:\s*,\s*{_DAY}(?:\s*-\s*{_DAY})?)*\s*$"
FROM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TO_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"

WINDOW: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "One transfer window, in the workstation's local time zone.",
    "properties": {
        "days": {
            "type": "string",
            "pattern": DAYS_PATTERN,
            "description": "The days the window opens (mon-fri, sat-sun, mon,wed,fri; fri-mon "
            "wraps the week end). Unset: every day.",
            "example": "mon-fri",
        },
        "from": {
            "type": "string",
            "pattern": FROM_PATTERN,
            "description": "Opening time, HH:MM (quoted). Unset: 00:00.",
            "example": "20:00",
        },
        "to": {
            "type": "string",
            "pattern": TO_PATTERN,
            "description": "Closing time, HH:MM (quoted); at or before `from`, the window "
            "crosses midnight. Unset: 24:00.",
            "example": "07:00",
        },
        "rate": {
            **RATE,
            "description": "The rate while this window is open, in bits per second (900Mbps, "
            "1Gbps; not a percentage: ascp's RATE command takes bits). Unset: target_rate.",
            "example": "900Mbps",
        },
    },
}

#: A target's link-sharing keys (issue 14).
LINK_PROPERTIES: Schema = {
    "schedule": {
        "type": "array",
        "items": WINDOW,
        "description": "Transfer windows: sessions start only while one is open, at its "
        "rate; a running session follows a rate change without stopping (FASPMGR RATE). "
        "Where windows overlap the first listed applies. Unset: always, at target_rate.",
        "example": [{"days": "mon-fri", "from": "20:00", "to": "07:00", "rate": "900Mbps"}],
    },
    "at_window_end": {
        "enum": ["finish", "pause"],
        "default": "finish",
        "description": "A session still running when its window closes: finish goes on; "
        "pause cancels it and the next window resumes it (finished files are not re-sent).",
        "example": "finish",
    },
    "max_sessions": {
        "type": "integer",
        "minimum": 1,
        "description": "The most sessions sent to this target at once. Unset: as many as "
        "there are workers.",
        "example": 2,
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
        **LINK_PROPERTIES,
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
