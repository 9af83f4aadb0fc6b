"""The owner process: it holds the database file, collects, serves readers and hosts the services.

Import from the submodules: ``owner.Owner``, ``sidecar.read_owner`` (no DuckDB), ``connect.connect``,
``runtime.run_owner``, ``scheduler.Scheduler``, ``api.OwnerApi``, ``ingest.IngestService``.
"""
