"""Secrets from a file or a systemd credential ($CREDENTIALS_DIRECTORY), read when needed so
a rotated secret takes effect without a restart. Never logged, never on a command line."""

from __future__ import annotations

import os
from pathlib import Path


class CredentialError(Exception):
    pass


def read_secret(file: Path | None = None, credential: str | None = None) -> str | None:
    if file is not None:
        return _read(file)
    if credential is not None:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise CredentialError(
                f"credential '{credential}' is not available: "
                "$CREDENTIALS_DIRECTORY is not set (LoadCredential= in the "
                "unit?)"
            )
        return _read(Path(folder) / credential)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise CredentialError(f"cannot read the secret from {path}: {err.strerror}") from err
