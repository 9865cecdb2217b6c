"""The window stage: a live status web page, /metrics and /healthz, inside the daemon.

Above `service` (it reads what the daemon counts and writes) and below `cli` (which starts it
beside the daemon and hands it the operator actions). Off unless the config has `http:`.

    wiring (from the config) -> server (waitress, bounded threads) -> app (Flask, login, CSRF)
      -> views (what the pages show, from state.summary) + exposition (/metrics)
      -> state.reader (the journal, read-only) and hotfolder.metrics (the daemon's counters)
"""
