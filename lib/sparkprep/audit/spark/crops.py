"""The crop search in Spark (sparkprep.audit.crops has the rule, the guarantee and the pure reference).

Every image emits the band keys of its whole pHash and of each of its window pHashes, under one
layout (crop_layout). Each (key, value) gathers its wholes and its windows in one shuffle; values
held by more than `cap` wholes or `cap` windows are counted as crowded, not joined; the others pair
each whole with each window of another image, and the exact Hamming distance keeps those within
the threshold. tests/spark/test_spark_crop_search.py checks the matches against crop_matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from sparkprep.audit.bands import BandLayout
from sparkprep.audit.spark.search import band_values


@dataclass
class SparkCropMatches:
    matches: DataFrame  # (whole, other, window, distance): ids of the images, the window's index, the bits
    crowded_keys: int   # (key, value)s shared by more than the cap of wholes or of windows
    buckets: DataFrame  # persisted: each key value's wholes and windows

    def release(self) -> None:
        """Free the persisted key values (once the matches are read)."""
        self.buckets.unpersist()


def crop_search(images: DataFrame, band: BandLayout, threshold: int, cap: int) -> SparkCropMatches:
    """The crop matches among `images` (id, whole: bigint, windows: array<bigint>): every (whole, other, window)
    with whole != other and the whole pHash of `whole` within `threshold` bits of window `window` of `other`,
    found wherever some key value they share is not crowded (all of them within band.guarantee bits)."""
    wholes = images.select(F.col("id").cast("string").alias("i"), F.col("whole").alias("h"),
                           F.posexplode(band_values(band, F.col("whole"))).alias("c", "v"))
    windows = (images.select(F.col("id").cast("string").alias("j"), F.posexplode("windows").alias("w", "h"))
               .select("j", "w", "h", F.posexplode(band_values(band, F.col("h"))).alias("c", "v")))
    none = {"x": "struct<i:string,h:bigint>", "y": "struct<j:string,w:int,h:bigint>"}
    keyed = (wholes.select("c", "v", F.struct("i", "h").alias("x"), F.lit(None).cast(none["y"]).alias("y"))
             .unionByName(windows.select("c", "v", F.lit(None).cast(none["x"]).alias("x"),
                                         F.struct("j", "w", "h").alias("y"))))
    # one shuffle: each key value's wholes and windows; a value only one side emits is dropped at once
    buckets = (keyed.groupBy("c", "v").agg(F.collect_list("x").alias("xs"), F.collect_list("y").alias("ys"))
               .where((F.size("xs") >= 1) & (F.size("ys") >= 1))
               .persist(StorageLevel.DISK_ONLY))
    crowded = buckets.where((F.size("xs") > cap) | (F.size("ys") > cap)).count()
    matches = (buckets.where((F.size("xs") <= cap) & (F.size("ys") <= cap))
               .select(F.explode("xs").alias("x"), "ys")
               .select("x", F.explode("ys").alias("y"))
               .where(F.col("x.i") != F.col("y.j"))
               .select(F.col("x.i").alias("whole"), F.col("y.j").alias("other"), F.col("y.w").alias("window"),
                       F.expr("bit_count(x.h ^ y.h)").alias("distance"))
               .where(F.col("distance") <= threshold)
               .dropDuplicates(["whole", "other", "window"]))
    return SparkCropMatches(matches, int(crowded), buckets)
