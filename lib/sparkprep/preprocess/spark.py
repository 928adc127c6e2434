"""Split table -> processed table: one Arrow-batched Python pass (mapInArrow), no row UDFs."""

from __future__ import annotations

import functools
import json

from pyspark.sql import DataFrame, SparkSession, functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.config import PreprocessConfig, UsageError
from sparkprep.preprocess.processed_rows import processed_batches
from sparkprep.schema import PREPROCESS_INPUT_COLUMNS, PROCESSED_SCHEMA, SPLIT_METADATA_KEY, missing_columns
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.ingest.spark import tune_scan

TRANSFORM_METADATA_KEY = "sparkprep.preprocess.transform"


def preprocess_frame(split_table: DataFrame, cfg: PreprocessConfig) -> DataFrame:
    """Decode, orient, convert, resize, augment and encode every ok row; quarantine the rest."""
    missing = missing_columns(split_table.columns, PREPROCESS_INPUT_COLUMNS)
    if missing:
        raise UsageError(f"--input: expected a split table of files (jobs/split.py), missing columns {missing}")
    work = functools.partial(processed_batches, spec=cfg.spec, copies_by_split=cfg.copies_by_split(),
                             max_pixels=cfg.max_pixels)
    processed = split_table.select(*PREPROCESS_INPUT_COLUMNS).mapInArrow(work, from_arrow_schema(PROCESSED_SCHEMA))
    key_meta = split_table.schema["key"].metadata or {}
    transform_meta = {TRANSFORM_METADATA_KEY: json.dumps({"digest": cfg.spec.digest(), **cfg.spec.as_dict()},
                                                         sort_keys=True)}
    return processed.select(*[
        F.col("key").alias("key", metadata={k: v for k, v in key_meta.items() if k == SPLIT_METADATA_KEY})
        if name == "key" else F.col(name).alias(name, metadata=transform_meta) if name == "transform"
        else F.col(name) for name in processed.columns])


def tune_table_scan(spark: SparkSession, uri: str, table: DataFrame) -> dict:
    """Partition sizing for a parquet/Delta input table, from its files and row count."""
    sizes = [size for _, size, _ in HadoopFS(spark).list_files(uri, ".parquet")]
    return tune_scan(spark, sizes, table.count()) if sizes else {}
