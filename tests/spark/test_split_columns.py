"""The native Spark SQL split expression equals the Python reference, key for key."""

from chispa import assert_df_equality
from pyspark.sql import functions as F

from sparkprep.split.assign import assign_split, bucket
from sparkprep.split.spark import bucket_column, split_by_bucket

KEYS = ["", "a", "é", "AbdomenCT/p000001_02.jpeg", "x" * 300] + [f"key-{i}" for i in range(500)]


def test_spark_buckets_and_splits_equal_the_python_reference(spark):
    ratios, names = [0.7, 0.15, 0.15], ["train", "val", "test"]
    keys = spark.createDataFrame([(k,) for k in KEYS], "key string")
    actual = keys.select("key", bucket_column("s1", F.col("key")).alias("bucket"),
                         split_by_bucket(bucket_column("s1", F.col("key")), ratios, names).alias("split"))
    expected = spark.createDataFrame([(k, bucket("s1", k), assign_split("s1", k, ratios, names)) for k in KEYS],
                                     "key string, bucket long, split string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
