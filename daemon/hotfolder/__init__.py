"""hotfolder: a drop folder in, a reliable video-ingest pipeline out.

Data flows one way, one concept per module:

    watch (inotify events, polls, scans; a thread per watch)
      -> manifest / grouping / rules (what a submission is, and whether it may go)
      -> stability / tracker (when it is ready)
      -> journal (SQLite: every state change, one transaction each)
      -> delivery + targets (local, ascp + faspmgr; media session, then the manifest alone)
      -> postprocess (archive, delete, quarantine with a report)
      -> verify (Backlot: did the ingest land?) and alerts (e-mail, webhook)

Leaves everyone may import: `model` (plain data), `clock` (the time seam), `ignore`,
`credentials`, `report` (quoting untrusted text safely; the failure report). Only `daemon`
(the wiring), `cli` and its helpers (`ops`, `survey`, `demo`) import the stages together.
`process` is the one module that spawns.
"""

__version__ = "0.1.0"
