"""tests/system boots a real systemd and builds the Debian package twice: minutes, not seconds.
It runs as its own CI step after the suite (.ci/run: HOTFOLDER_SYSTEM_TESTS=1 tests/run
tests/system), and is left out of the everyday `tests/run`."""

import os

collect_ignore_glob = [] if os.environ.get("HOTFOLDER_SYSTEM_TESTS") == "1" else ["test_*.py"]
