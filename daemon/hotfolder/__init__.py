"""hotfolder: a drop folder in, a reliable video-ingest pipeline out.

Data flows one way, one concept per module:

    watch (events, scans) -> manifest / grouping / rules (what a submission is)
      -> stability / tracker (when it is ready) -> journal (SQLite state)
      -> delivery + targets (media session, then the manifest alone)
      -> postprocess (archive, delete, quarantine with a report)

`model` (plain data) and `clock` (the time seam) are leaves everyone may import; only `daemon`
(the wiring) and `cli` import the stages together.
"""

__version__ = "0.1.0"
