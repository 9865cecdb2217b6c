"""hotfolder: a drop folder in, a reliable video-ingest pipeline out.

Data flows one way; each stage is a folder, and a stage imports only from itself and the
stages above it in this list (tests/unit/test_import_direction.py keeps it so):

    (leaves)  model, clock, report, beneath, durable, credentials, units, ignore, perms,
              metrics (counters any stage may feed)
    config    settings (the typed result) from yamlfile, validation (schema*, units),
              crosschecks; sections (typed target/notification settings); checks (what
              check-config verifies beyond the file); fleet (the journal: block)
    intake    watch (inotify, the folder guard), listing (scans and polls), mounts
    assemble  manifest, rules, grouping (what a submission is, and whether it may go);
              stability, tracker with candidates/looking/reading/verdicts/problems (when it
              is ready); decisions (what the tracker says); owner (who dropped it)
    state     port (the journal interface), journal (SQLite, the default) with rows,
              journal_file, journal_reads; pg_journal (PostgreSQL, for fleets); recovery,
              known (ids and generations); reader and summary (read-only views)
    transfer  delivery (media session, then the manifest alone), targets (local, ascp +
              faspmgr, steering), process (the one module that spawns), faults (admin
              holds), progress, schedule, link, ready_queue (windows, rates, fair share)
    after     postprocess (archive, delete, quarantine with a report), verify (Backlot),
              alerts (e-mail, webhook), backlot (the API client), background (their thread)
    service   daemon (the thin wiring and main loop) over its rooms: watch_loop and
              availability (a thread per watch), outcomes (decisions into the journal; one
              reject), dispatcher with admission, worker, recover, in_force; fleet (claims
              and leases); control_socket; sd_notify (systemd); logs
    window    the status pages and /metrics (waitress + Flask)
    cli       main (argparse; one function per command), ops, scan, demo, statusview,
              nodes, windows, web

Where a change goes: a new manifest rule in assemble/rules, a new target in
transfer/targets, a new thing to do after delivery in after/, a new command in cli/.
"""

__version__ = "0.1.0"
