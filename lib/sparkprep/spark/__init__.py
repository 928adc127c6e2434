"""Thin Spark glue: sessions, sources, UDF wrappers and sinks. Pure logic lives one level up."""
