"""The ingest stage's Spark glue: sources, manifests, incremental runs, reconciliation, --plan."""
