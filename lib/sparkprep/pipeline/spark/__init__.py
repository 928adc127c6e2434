"""The pipeline's Spark glue: the run (run.py), and what a run reuses of earlier ones (reuse.py)."""
