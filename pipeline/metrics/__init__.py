"""Prometheus metrics of every stage, on the ingest app's registry (one ``/metrics``).

``stages`` holds what only this process can count (dispatch attempts and their latency,
projector batches, scheduler runs), fed through small observer hooks; ``collector`` reads
what the database knows (lag, deliveries, mismatches, quarantine, circuits, appended events)
at scrape time, with bounded cost. Names and meanings: docs/operations.md.
"""
