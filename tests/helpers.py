"""What many test files share: a table as rows, and a split or preprocess run.

`table_rows` is the one way a test reads a written table: parquet or Delta, hive partitions
included, every column unless it names some, in an order that does not depend on how Spark cut
the files. Two tables are equal when their `table_rows` are.
"""

import os

import pyarrow.parquet as pq


def row_order(row):
    """path, then aug_index, then the rest of the row: the same rows always come out in one order."""
    return (str(row.get("path") or ""), row.get("aug_index") or 0, repr(sorted(row.items())))


def table_rows(path, columns=None):
    """Every row of the table at `path` (parquet, or Delta through deltalake), as dicts, in row_order."""
    path = str(path)
    if os.path.isdir(os.path.join(path, "_delta_log")):
        from deltalake import DeltaTable

        table = DeltaTable(path).to_pyarrow_table(columns=columns)
    else:
        table = pq.read_table(path, columns=columns)
    return sorted(table.to_pylist(), key=row_order)


def split(spark, *argv):
    """run_split on these flags (paths may be pathlib.Path), as the job would parse them."""
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    return run_split(spark, split_config([str(a) for a in argv]))


def preprocess(spark, *argv):
    """run_preprocess on these flags (paths may be pathlib.Path), as the job would parse them."""
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import run_preprocess

    return run_preprocess(spark, preprocess_config([str(a) for a in argv]))


def pipeline(spark, *argv):
    """run_pipeline on these flags (paths may be pathlib.Path), as the job would parse them."""
    from sparkprep.pipeline.flags import pipeline_config
    from sparkprep.pipeline.spark.run import run_pipeline

    return run_pipeline(spark, pipeline_config([str(a) for a in argv]))


def export(spark, *argv):
    """run_export on these flags (paths may be pathlib.Path), as the job would parse them."""
    from sparkprep.export.flags import export_config
    from sparkprep.export.spark import run_export

    return run_export(spark, export_config([str(a) for a in argv]))


def splitter(*defaults):
    """split(spark, tree, out, *extra) with a test file's own default flags after --input and --output."""
    def run(spark, tree, out, *extra):
        return split(spark, "--input", tree, "--output", out, *defaults, *extra)
    return run


def hide(paths):
    """Every file in `paths` gets other bytes of its own size and mtime, so that an incremental run that read
    one would differ from a full run on the real bytes. Returns what restores them."""
    saved = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths}
    for path, (data, mtime) in saved.items():
        path.write_bytes(b"\xff" * len(data))
        os.utime(path, ns=(mtime, mtime))

    def restore():
        for path, (data, mtime) in saved.items():
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))
    return restore
