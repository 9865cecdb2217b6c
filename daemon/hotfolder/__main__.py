"""`python3 -m hotfolder`: what the systemd unit runs."""

import sys

from hotfolder.cli.main import main

sys.exit(main())
