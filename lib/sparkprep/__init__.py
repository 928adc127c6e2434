"""sparkprep: prepare ML training data at scale on Apache Spark."""

__version__ = "0.1.0"
