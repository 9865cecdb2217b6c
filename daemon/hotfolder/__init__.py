"""hotfolder: a drop folder in, a reliable video-ingest pipeline out.

Data flows one way; each stage is a folder, and a stage imports only from itself and the
stages above it in this list (tests/unit/test_import_direction.py keeps it so):

    (leaves)  model, clock, report, beneath, durable, credentials, units, ignore, perms
    config    settings (the YAML and its schema), checks (what check-config verifies)
    intake    watch: inotify events, polls, scans; a thread per watch
    assemble  manifest, rules, grouping (what a submission is, and whether it may go);
              stability, tracker (when it is ready); decisions (what the tracker says)
    state     journal (SQLite: every state change, one transaction each), recovery, known
    transfer  delivery (media session, then the manifest alone), targets (local, ascp +
              faspmgr), process (the one module that spawns), faults (admin holds)
    after     postprocess (archive, delete, quarantine with a report), verify (Backlot: did
              the ingest land?), alerts (e-mail, webhook), backlot (the API client)
    service   daemon (the wiring and its loops), sd_notify (systemd), logs
    cli       main (argparse; one function per command), ops, scan, demo, statusview

Where a change goes: a new manifest rule in assemble/rules, a new target in
transfer/targets, a new thing to do after delivery in after/, a new command in cli/.
"""

__version__ = "0.1.0"
