"""The schema of logging and of each watch (a drop folder) with its permissions."""

from __future__ import annotations

from hotfolder.config.schema_common import BYTES, DURATION, MODE, Schema

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
        "priority": {
            "type": "integer",
            "minimum": 0,
            "maximum": 9,
            "default": 5,
            "description": "0-9: ready submissions of a higher priority start first; among "
            "equal priorities the watches take turns.",
            "example": 7,
        },
        "manifest_priority": {
            "enum": ["ignored", "allowed"],
            "default": "ignored",
            "description": "allowed: a manifest may raise its own submission's priority with "
            "<hf:priority>N</hf:priority> under <channel> (MRSS) or a 'priority' column (CSV; "
            "the highest row counts); it never lowers the watch's. The manifest is sent as it "
            "is: check the ingest server accepts the extra element or column first.",
            "example": "allowed",
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
