"""What in a drop folder is never content (ingest-facts §1.4, §1.7): transfer leftovers,
operating-system droppings, editors' lock files, hidden files, plus each watch's own globs."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

BUILTIN = (
    "*.partial",
    "*.aspx",
    "*.aspera-ckpt",
    "*.aspera-env",
    "aspera-transfer-*-manifest.txt*",
    ".DS_Store",
    "._*",
    "~$*",
    "*.tmp",
    "Thumbs.db",
    ".*",
)


def is_ignored(name: str, extra: Iterable[str] = ()) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in (*BUILTIN, *extra))
