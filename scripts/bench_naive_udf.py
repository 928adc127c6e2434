"""The naive Spark way, for scripts/bench_preprocess.py to compare against (not a sparkprep job).

A row-at-a-time Python UDF, full-resolution decode (no JPEG draft), Spark's default file
packing, then the same 224 px RGB JPEG q90 output written to parquet.

    spark-submit scripts/bench_naive_udf.py INPUT_DIR OUTPUT_DIR [--floor]

--floor: the least any Spark job over these files does, and nothing else: read them with
binaryFile and write the rows to parquet (no Python, no transform). Its whole time is the floor
the pipeline's fixed cost is measured against.
"""

import io
import sys

from PIL import Image, ImageOps
from pyspark.sql import SparkSession, functions as F


def resize_jpeg(data):
    image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image).convert("RGB")
    image = ImageOps.fit(image, (224, 224), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main(argv):
    source, output, *mode = argv
    spark = SparkSession.builder.appName("naive-udf").getOrCreate()
    files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(source)
    if mode == ["--floor"]:
        files.write.mode("overwrite").parquet(output)
        spark.stop()
        return
    udf = F.udf(resize_jpeg, "binary")
    files.select("path", F.sha2("content", 256).alias("sha256"), udf("content").alias("image")) \
        .write.mode("overwrite").parquet(output)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
