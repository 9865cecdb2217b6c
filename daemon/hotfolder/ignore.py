"""What in a drop folder is never content (ingest-facts §1.4, §1.7): transfer leftovers,
operating-system droppings, editors' lock files, hidden files, plus each watch's own globs."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache

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
    return _matcher(tuple(extra)).match(name) is not None


@lru_cache(maxsize=32)
def _matcher(extra: tuple[str, ...]) -> re.Pattern[str]:
    """All the globs as one compiled pattern: a scan of 100,000 files asks for every name, and
    eleven fnmatch calls a name were most of a start-up's scan."""
    return re.compile("|".join(fnmatch.translate(p) for p in (*BUILTIN, *extra)))
