"""The schema of what hotfolder talks to besides targets: Backlot accounts, notifications
(e-mail, webhook), the web window and the editors it mails."""

from __future__ import annotations

from hotfolder.config.schema_common import Schema, secret_keys

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
