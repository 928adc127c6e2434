"""Build the one SparkSession a job uses; only jobs/ and the test fixture call this."""

from __future__ import annotations

from pyspark import SparkConf
from pyspark.sql import SparkSession

from sparkprep.runlog import StageClock

# Settings the jobs rely on for correctness or usability; a value the user set wins.
REQUIRED_CONF = {
    # delta-rs refuses Spark's default INT96 timestamps
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    # Tables are partitioned by split (a handful of values): let each task keep one open
    # writer per split instead of sorting its rows (images included) by split first.
    # Measured: the sort was ~13% of a 2,000-photo preprocess write stage.
    "spark.sql.optimizer.plannedWrite.enabled": "false",
    "spark.sql.maxConcurrentOutputFileWriters": "16",
    # The tables are wide (bytes, hashes, probes): plans over 25 fields printed a WARN per job
    # ("Truncated the string representation of a plan") into every summary.
    "spark.sql.debug.maxToStringFields": "200",
}


def build_session(app_name: str, extra_conf: "dict[str, str] | None" = None) -> SparkSession:
    """getOrCreate a session with REQUIRED_CONF filled in under anything already configured."""
    conf = SparkConf()  # holds what spark-submit / --conf / spark-defaults passed
    builder = SparkSession.builder.appName(f"sparkprep-{app_name}")
    for key, value in {**REQUIRED_CONF, **(extra_conf or {})}.items():
        if not conf.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def delta_jars_active(spark: SparkSession) -> bool:
    """True when Delta's Spark extension is on the classpath and configured in this session."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if "DeltaSparkSessionExtension" not in extensions:
        return False
    try:
        spark._jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension")
    except Exception:  # noqa: BLE001 - py4j raises its own error type for ClassNotFound
        return False
    return True


def job_counter(spark: SparkSession):
    """A callable: how many Spark jobs this application has started (the DAG scheduler's job ids, read
    synchronously, unlike the status store, which the listener bus fills later)."""
    scheduler = spark.sparkContext._jsc.sc().dagScheduler()
    return lambda: int(scheduler.numTotalJobs())


def run_clock(spark: SparkSession, job: str) -> StageClock:
    """The stage clock of one run, counting the Spark jobs each stage starts."""
    return StageClock(job, jobs=job_counter(spark))
