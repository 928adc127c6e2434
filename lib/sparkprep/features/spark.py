"""Tabular split table -> features fitted on one split (Spark ML), written per split.

1. roles: which columns are the label, numeric and categorical features (one aggregate checks
   that string columns named numeric hold numbers, and finds them for `--numeric auto`);
2. fit: a Spark ML Pipeline (casts, Imputer, StringIndexer 'keep' + OneHotEncoder, scaler,
   assembler) is fitted on the ok rows of `--fit-split` only, and applied to every split;
3. write: into a staging directory, per split: XGBoost CSV, libsvm, parquet, the fitted
   PipelineModel (`_model`), feature names and category maps; then the directory is published
   whole by the table swap (sparkprep.spark.tables.publish_directory).
Rows that cannot be features (not ok in the input, a missing label, a label the fit split
never had) go to `quarantine/` with a reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import (Imputer, ImputerModel, MinMaxScaler, MinMaxScalerModel, OneHotEncoder, SQLTransformer,
                                StandardScaler, StandardScalerModel, StringIndexer, StringIndexerModel, VectorAssembler)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkprep.errors import UsageError
from sparkprep.features import columns
from sparkprep.features.flags import FeaturesConfig
from sparkprep.runlog import StageClock, config_dict, versions
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.tables import claimed_output, publish_directory, read_input_table
from sparkprep.statuses import MISSING_LABEL, OK, UNSEEN_LABEL
from sparkprep.uris import redact_uri
from sparkprep.spark.session import run_clock

MODEL_DIR = "_model"
QUARANTINE_DIR = "quarantine"
LABEL = "_label"  # the label as a double, in the scored rows
EXAMPLES = 5


@dataclass(frozen=True)
class Roles:
    """What each input column is for."""

    label: str            # the label column of the input table
    label_strings: bool   # string labels: mapped to 0..k-1 (label_map.json); else used as numbers
    numeric: Tuple[str, ...]
    categorical: Tuple[str, ...]
    ignored: Tuple[str, ...]  # columns that are neither (strings with text in the fit split, for --numeric auto)
    text_outside_fit: Optional[Dict[str, int]] = None  # numeric columns: values of other splits that are text (missing)


def run_features(spark: SparkSession, cfg: FeaturesConfig, clock: Optional[StageClock] = None) -> dict:
    clock = clock or run_clock(spark, "features")
    with claimed_output(spark, cfg.output, "parquet", "features", kind=ownership.FEATURES) as claim:
        clock.stage("reading", cfg.input)
        table, input_info, split_config = _source(spark, cfg)
        roles = column_roles(table, cfg, split_config)
        rows = labelled_rows(table, roles).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            fit_rows = rows.where((F.col("status") == OK) & (F.col("split") == cfg.fit_split))
            if not fit_rows.limit(1).count():
                raise no_fit_rows(table, roles, cfg)
            clock.stage("fitting", f"{len(roles.numeric)} numeric, {len(roles.categorical)} categorical columns "
                                   f"on split {cfg.fit_split!r} only")
            labels = label_indexer(roles).fit(fit_rows) if roles.label_strings else None
            model = feature_pipeline(roles, cfg).fit(fit_rows)
            maps = columns.category_maps(roles.categorical, _indexer_labels(model, roles))
            names = columns.feature_names(roles.numeric, maps)
            # not cached: each writer recomputes the transform from the cached rows, which measured
            # as fast as caching 77 doubles a row, in far less memory
            scored = scored_rows(rows, model, labels, roles)
            pages: Dict[str, str] = {}
            fill = lambda staging: _write_outputs(spark, cfg, clock, staging, scored, model, roles, maps, names,
                                                  labels, input_info, pages)
            report = publish_directory(spark, claim, fill, pages)
        finally:
            rows.unpersist()
    return report


def _source(spark: SparkSession, cfg: FeaturesConfig):
    """The input table, what identifies it, and the split job's config from its run report."""
    table, uri, delta = read_input_table(spark, cfg.input, cfg.format)
    uri = uri.rstrip("/")
    report = ownership.json_object(HadoopFS(spark).read_text(f"{uri}/{ownership.REPORT_NAME}")) or {}
    missing = [c for c in ("key", "split", "sha256", "status", "error") if c not in table.columns]
    if missing:
        raise UsageError(f"--input: expected a split table (jobs/split.py) with columns key, split, sha256, "
                         f"status, error; {cfg.input} has no {', '.join(missing)}")
    return table, {"uri": redact_uri(uri), "format": "delta" if delta else "parquet",
                   "split_job": report.get("job")}, report.get("config") or {}


def no_fit_rows(table: DataFrame, roles: Roles, cfg: FeaturesConfig) -> UsageError:
    """Why the fit split has no ok, labelled rows, and the way out."""
    in_fit = table.where((F.col("status") == OK) & (F.col("split") == cfg.fit_split))
    if in_fit.limit(1).count():  # ok rows there, but every one lacks a label
        hint = "use another --label-column"
        kept = f"src_{roles.label}"
        if kept in table.columns:
            hint = (f"jobs/split.py kept the input's own {roles.label!r} column as {kept!r} (it was split without "
                    f"--label-column): use --label-column {kept}, or split again with --label-column {roles.label}")
        return UsageError(f"--label-column: expected labels in split {cfg.fit_split!r}, but {roles.label!r} is null "
                          f"in every ok row of it; {hint}")
    present = sorted(r["split"] for r in table.where(F.col("status") == OK).select("split").distinct().collect())
    return UsageError(f"--fit-split: expected a split with ok rows ({', '.join(present)}), got {cfg.fit_split!r}")


def _types(table: DataFrame) -> Dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in table.schema.fields}


def _number(column: str):
    """The column as a double: numbers as they are, strings parsed (null where they are not numbers)."""
    return F.expr(f"try_cast({_quoted(column)} AS double)")


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def column_roles(table: DataFrame, cfg: FeaturesConfig, split_config: dict) -> Roles:
    """Resolve --label-column, --categorical and --numeric against the table: UsageError for a
    missing column, or a column named numeric that holds text (one aggregate over the string columns)."""
    types = _types(table)
    label = cfg.label_column
    if label not in types:
        # jobs/split.py keeps a tabular --label-column as `label`
        if split_config.get("label_column") == label and "label" in types:
            label = "label"
        else:
            raise UsageError(f"--label-column: expected a column of the input, got {cfg.label_column!r} "
                             f"(columns: {', '.join(types)})")
    for column in cfg.categorical + (cfg.numeric or ()):
        if column not in types:
            flag = "--categorical" if column in cfg.categorical else "--numeric"
            raise UsageError(f"{flag}: expected a column of the input, got {column!r} (columns: {', '.join(types)})")
    key_column = columns.split_key_column(split_config)
    if cfg.numeric is None:
        typed, strings = columns.numeric_candidates(
            list(types.items()), {label, key_column or "", *cfg.categorical})
    else:
        bad = [c for c in cfg.numeric if types[c] not in columns.NUMERIC_TYPES + ("string",)
               and not types[c].startswith("decimal")]
        if bad:
            raise UsageError(f"--numeric: expected numeric columns, got {bad[0]!r} of type {types[bad[0]]}")
        typed = [c for c in cfg.numeric if types[c] != "string"]
        strings = [c for c in cfg.numeric if types[c] == "string"]
    label_is_text = types[label] == "string"
    texts, counted, elsewhere = _survey(table, strings + ([label] if label_is_text else []), typed + strings,
                                        cfg.fit_split)
    if cfg.numeric is not None:
        for column in strings:
            if texts.get(column):
                raise UsageError(f"--numeric: expected numbers in column {column!r}, got text such as "
                                 f"{texts[column]!r}")
        for column in cfg.numeric:
            if not counted.get(column):
                raise UsageError(f"--numeric: expected numbers in column {column!r} in split {cfg.fit_split!r}, "
                                 "got none (nothing to impute or scale from)")
    order = cfg.numeric or [c for c in types if c in typed or c in strings]
    numeric = tuple(c for c in order if not texts.get(c) and counted.get(c))
    ignored = tuple(c for c in order if c not in numeric)
    if not numeric and not cfg.categorical:
        raise UsageError("--numeric/--categorical: expected at least one feature column, got none "
                         f"(numeric columns found: none; columns: {', '.join(types)})")
    return Roles(label=label, label_strings=label_is_text and bool(texts.get(label)), numeric=numeric,
                 categorical=tuple(cfg.categorical), ignored=ignored,
                 text_outside_fit={c: elsewhere[c] for c in numeric if elsewhere.get(c)})


def _survey(table: DataFrame, string_columns: List[str], candidates: List[str],
            fit_split: str) -> Tuple[Dict[str, Optional[str]], Dict[str, int], Dict[str, int]]:
    """One aggregate over the ok rows: per string column, one value of the fit split that is not a
    number (None when all are numbers or null); per candidate column, how many numbers the fit split
    has; per string column, how many values of the other splits are not numbers.

    Only the fit split decides what a column is: text in val or test rows never turns a numeric
    column into an ignored one (those values are missing, and imputed like any other)."""
    if not string_columns and not candidates:
        return {}, {}, {}
    fit = F.col("split") == fit_split
    text_value = lambda c: F.col(c).isNotNull() & _number(c).isNull()  # noqa: E731
    text = [F.first(F.when(fit & text_value(c), F.col(c)), ignorenulls=True).alias(f"_t{i}")
            for i, c in enumerate(string_columns)]
    elsewhere = [F.count(F.when(~fit & text_value(c), F.lit(1))).alias(f"_o{i}") for i, c in enumerate(string_columns)]
    numbers = [F.count(F.when(fit, _number(c))).alias(f"_n{i}") for i, c in enumerate(candidates)]
    found = table.where(F.col("status") == OK).agg(*text, *elsewhere, *numbers).first()
    return ({c: found[f"_t{i}"] for i, c in enumerate(string_columns)},
            {c: found[f"_n{i}"] for i, c in enumerate(candidates)},
            {c: int(found[f"_o{i}"] or 0) for i, c in enumerate(string_columns)})


def labelled_rows(table: DataFrame, roles: Roles) -> DataFrame:
    """The input with its label as `_label_raw` and ok rows without a label quarantined (missing_label)."""
    missing = (F.col("status") == OK) & F.col(roles.label).isNull()
    return (table.withColumn("_label_raw", F.col(roles.label))
            .withColumn("error", F.when(missing, F.lit(f"label column {roles.label!r} is null"))
                        .otherwise(F.col("error").cast("string")))
            .withColumn("status", F.when(missing, F.lit(MISSING_LABEL)).otherwise(F.col("status"))))


def label_indexer(roles: Roles) -> StringIndexer:
    """String labels -> 0..k-1 in sorted order, fitted on the fit split; others get index k (unseen_label)."""
    return StringIndexer(inputCol="_label_raw", outputCol=LABEL, stringOrderType="alphabetAsc", handleInvalid="keep")


def feature_pipeline(roles: Roles, cfg: FeaturesConfig) -> Pipeline:
    """The Spark ML pipeline from raw input columns to `features`, for fitting on one split.

    It starts from the table's own columns (a SQLTransformer parses numbers and casts
    categories to strings), so the saved PipelineModel applies to raw rows when serving.
    """
    num = [f"__num_{i}" for i in range(len(roles.numeric))]
    cat = [f"__cat_{i}" for i in range(len(roles.categorical))]
    casts = [f"try_cast({_quoted(c)} AS double) AS {n}" for c, n in zip(roles.numeric, num)]
    casts += [f"CAST({_quoted(c)} AS string) AS {n}" for c, n in zip(roles.categorical, cat)]
    stages: list = [SQLTransformer(statement=f"SELECT *, {', '.join(casts)} FROM __THIS__")]
    vector_parts = []
    if num:
        filled = num
        if cfg.impute != "none":
            filled = [f"__imp_{i}" for i in range(len(num))]
            stages.append(Imputer(inputCols=num, outputCols=filled, strategy=cfg.impute))
        stages.append(VectorAssembler(inputCols=filled, outputCol="__numeric", handleInvalid="keep"))
        vector_parts.append("__numeric")
        if cfg.scale != "none":
            scaler = (StandardScaler(withMean=True, withStd=True) if cfg.scale == "standard" else MinMaxScaler())
            stages.append(scaler.setInputCol("__numeric").setOutputCol("__scaled"))
            vector_parts[-1] = "__scaled"
    if cat:
        index = [f"__idx_{i}" for i in range(len(cat))]
        onehot = [f"__ohe_{i}" for i in range(len(cat))]
        stages.append(StringIndexer(inputCols=cat, outputCols=index, handleInvalid="keep",
                                    stringOrderType="alphabetAsc"))
        stages.append(OneHotEncoder(inputCols=index, outputCols=onehot, dropLast=False))  # the 'keep' slot is kept
        vector_parts += onehot
    stages.append(VectorAssembler(inputCols=vector_parts, outputCol="features", handleInvalid="keep"))
    return Pipeline(stages=stages)


def _indexer_labels(model: PipelineModel, roles: Roles) -> List[List[str]]:
    indexers = [s for s in model.stages if isinstance(s, StringIndexerModel)]
    return [list(labels) for labels in indexers[0].labelsArray] if roles.categorical else []


def scored_rows(rows: DataFrame, model: PipelineModel, labels, roles: Roles) -> DataFrame:
    """Every row with `_label` (double), `_values` (the feature array) and its one-hot indices;
    ok rows whose string label the fit split never had become unseen_label."""
    if labels is not None:
        rows = labels.transform(rows)
        unseen = (F.col("status") == OK) & (F.col(LABEL) >= len(labels.labelsArray[0]))
        reason = F.concat(F.lit(f"label {roles.label!r} value "), F.col("_label_raw").cast("string"),
                          F.lit(" is not in the fit split"))
        rows = (rows.withColumn("error", F.when(unseen, reason).otherwise(F.col("error")))
                .withColumn("status", F.when(unseen, F.lit(UNSEEN_LABEL)).otherwise(F.col("status"))))
    else:
        rows = rows.withColumn(LABEL, _number("_label_raw"))
    scored = model.transform(rows).withColumn("_values", vector_to_array("features"))
    kept = ["key", "sha256", "split", "status", "error", "_label_raw", LABEL, "_values"]  # what the writers read
    kept += [f"__idx_{i}" for i in range(len(roles.categorical))] + list(dict.fromkeys(_input_columns(roles)))
    return scored.select(*kept)


def _write_outputs(spark: SparkSession, cfg: FeaturesConfig, clock: StageClock, staging: str, scored: DataFrame,
                   model: PipelineModel, roles: Roles, maps: Dict[str, Dict[str, int]], names: List[str], labels,
                   input_info: dict, pages: Dict[str, str]) -> dict:
    fs = HadoopFS(spark)
    ok = scored.where(F.col("status") == OK)
    clock.stage("counting", "rows per split and label, quarantine, unknown categories")
    counts, quarantine, unknown, per_split = _counts(scored, roles, maps)
    files = columns.files_per_split(per_split, cfg.rows_per_file)
    written: Dict[str, dict] = {}
    for target in cfg.to:
        clock.stage(f"writing {target}", f"{sum(files.values())} files per output: "
                                        + ", ".join(f"{s} {n}" for s, n in files.items()))
        lines = _lines(ok, target, names, cfg.label_column)
        written[target] = _write_per_split(fs, lines, files, f"{staging}/{target}", target)
    quarantined = scored.where(F.col("status") != OK).select(
        "key", "split", "status", "error", *dict.fromkeys(_input_columns(roles)))
    quarantined.write.mode("overwrite").parquet(f"{staging}/{QUARANTINE_DIR}")
    clock.stage("saving the fitted PipelineModel", f"{MODEL_DIR}/")
    model.write().overwrite().save(f"{staging}/{MODEL_DIR}")
    label_map = {str(v): i for i, v in enumerate(labels.labelsArray[0])} if labels is not None else None
    described = {"features": names, "label": {"column": roles.label, "map": label_map},
                 "numeric": list(roles.numeric), "categorical": list(roles.categorical),
                 "ignored_columns": list(roles.ignored), "unknown_category": columns.UNKNOWN,
                 "unknown_slots": {c: max(m, key=m.get) for c, m in maps.items()},  # the last slot
                 "xgboost-csv": "label, then feature i in column i + 1; no header; empty = missing",
                 "libsvm": ("label, then i:value for every feature that is not missing, zeros included (as the "
                            "CSV); i is 0-based (feature_names index); an absent index is a missing value")}
    fs.write_text(f"{staging}/feature_names.json", json.dumps(described, indent=2) + "\n")
    fs.write_text(f"{staging}/category_maps.json", json.dumps(maps, indent=2) + "\n")  # one-hot order
    if label_map is not None:
        fs.write_text(f"{staging}/label_map.json", json.dumps(label_map, indent=2, sort_keys=True) + "\n")
    seconds = clock.total()
    total = sum(sum(per.values()) for per in counts.values())
    report = {
        "job": "features", "config": config_dict(cfg), "input": input_info,
        "output": {"uri": redact_uri(cfg.output), "format": "+".join(cfg.to), "files": written,
                   "model": f"{redact_uri(cfg.output).rstrip('/')}/{MODEL_DIR}"},
        "rows": total, "counts": counts, "quarantine": quarantine,
        "features": {"count": len(names), "names": names, "fit_split": cfg.fit_split,
                     "fitted": fitted_statistics(model, roles, maps), "label_map": label_map,
                     "unknown_categories": unknown, "ignored_columns": list(roles.ignored),
                     "text_outside_fit_split": roles.text_outside_fit or {}},
        "seconds": seconds, "durations": dict(clock.durations), "spark_jobs": clock.spark_jobs(),
        "throughput": {"rows_per_s": round(total / seconds, 1) if seconds else 0.0, "unit": "rows"},
        "versions": versions(spark.version),
    }
    from sparkprep.page import render

    pages[ownership.PAGE] = render(report, {})
    if cfg.report:
        fs.write_text(cfg.report, json.dumps(report, indent=2))
    return report


def _input_columns(roles: Roles) -> Tuple[str, ...]:
    return (roles.label,) + roles.numeric + roles.categorical


def _counts(scored: DataFrame, roles: Roles, maps: Dict[str, Dict[str, int]]):
    """One aggregate: rows per split and label (all statuses), quarantine per reason (with a few
    examples), ok rows per split, and per split the ok rows whose category the fit split never had."""
    label = F.coalesce(F.col("_label_raw").cast("string"), F.lit("(none)"))
    ok = F.col("status") == OK
    unknown_of = [F.sum((ok & (F.col(f"__idx_{i}") == F.lit(len(maps[c]) - 1))).cast("long")).alias(f"_u{i}")
                  for i, c in enumerate(roles.categorical)]
    grouped = scored.groupBy("split", label.alias("label"), "status").agg(F.count(F.lit(1)).alias("n"),
                                                                          *unknown_of).collect()
    counts: Dict[str, Dict[str, int]] = {}
    reasons: Dict[str, int] = {}
    per_split: Dict[str, int] = {}
    unknown: Dict[str, Dict[str, int]] = {}
    for r in sorted(grouped, key=lambda r: r["split"]):
        per = counts.setdefault(r["split"], {})
        per[r["label"]] = per.get(r["label"], 0) + r["n"]
        if r["status"] != OK:
            reasons[r["status"]] = reasons.get(r["status"], 0) + r["n"]
            continue
        per_split[r["split"]] = per_split.get(r["split"], 0) + r["n"]
        seen = unknown.setdefault(r["split"], {c: 0 for c in roles.categorical})
        for i, c in enumerate(roles.categorical):
            seen[c] += int(r[f"_u{i}"] or 0)
    quarantine = {}
    for reason in sorted(reasons):
        examples = scored.where(F.col("status") == reason).select("key", "error").limit(EXAMPLES).collect()
        quarantine[reason] = {"count": reasons[reason],
                              "examples": [{"path": r["key"], "error": r["error"]} for r in examples]}
    return {s: dict(sorted(per.items())) for s, per in counts.items()}, quarantine, unknown, per_split


def _lines(ok: DataFrame, target: str, names: List[str], label_name: str) -> DataFrame:
    """The rows of one output: `_part` (the split), key and sha256 (the file order), and the line
    (text outputs) or the label and feature columns (parquet)."""
    if target == "parquet":
        return ok.select(F.col("split").alias("_part"), "key", "sha256", "split", F.col(LABEL).alias(label_name),
                         *[F.col("_values")[i].alias(name) for i, name in enumerate(names)])
    label = F.col(LABEL).cast("string")
    if target == "xgboost-csv":
        values = F.transform("_values", lambda x: F.when(F.isnan(x), F.lit("")).otherwise(x.cast("string")))
        line = F.concat_ws(",", label, values)
    else:  # libsvm: 0-based index:value of every feature that is not missing, zeros included
        # XGBoost reads an absent index as a missing value, never as 0. Leaving zeros out (numeric or
        # one-hot) made a model trained on the file disagree with the same model on dense rows: with
        # only 1.0 stored for a one-hot feature, it learned `c=b < 2.00001, missing -> no`, which sends
        # a dense 0 the way of 1.0 (tests/spark/test_features_job.py). So the file holds the CSV's values.
        pairs = F.transform("_values", lambda x, i: F.when(F.isnan(x), F.lit(None))
                            .otherwise(F.concat(i.cast("string"), F.lit(":"), x.cast("string"))))
        line = F.concat_ws(" ", label, F.filter(pairs, lambda p: p.isNotNull()))
    return ok.select(F.col("split").alias("_part"), "key", "sha256", line.alias("value"))


def _write_per_split(fs: HadoopFS, frame: DataFrame, files: Dict[str, int], base: str,
                     target: str) -> Dict[str, dict]:
    """Write frame as <base>/<split>/part-NNNNN.<ext>: file NNNNN holds the rows whose key hashes to
    bucket NNNNN of the split's files[split], sorted by key, so the same input gives the same files
    however Spark partitions the work (each bucket is a directory of the write, then one file)."""
    buckets = F.create_map(*[x for s, n in files.items() for x in (F.lit(s), F.lit(n))])
    planned = (frame.withColumn("_bucket", F.pmod(F.xxhash64("key", "sha256"), buckets[F.col("_part")]))
               .repartition(2 * max(1, sum(files.values())), "_part", "_bucket")
               .sortWithinPartitions("_part", "_bucket", "key", "sha256"))
    if target == "parquet":
        planned.drop("sha256").write.mode("overwrite").partitionBy("_part", "_bucket").parquet(base)
    else:
        planned.select("_part", "_bucket", "value").write.mode("overwrite").partitionBy("_part", "_bucket").text(base)
    return _tidy(fs, base, columns.OUTPUT_EXTENSIONS[target])


def _tidy(fs: HadoopFS, base: str, ext: str) -> Dict[str, dict]:
    """Spark's `_part=<split>/_bucket=<n>/part-...` -> `<split>/part-<n>.<ext>`; no _SUCCESS, no .crc
    files (a SageMaker channel reads every file under its prefix)."""
    out: Dict[str, dict] = {}
    for child in fs.children(base):
        name = child.rsplit("/", 1)[-1]
        if not name.startswith("_part="):
            fs.delete(child)  # _SUCCESS
            continue
        split, target = name[len("_part="):], f"{base}/{name[len('_part='):]}"
        moved = []
        for bucket_dir in fs.children(child):
            bucket = int(bucket_dir.rsplit("=", 1)[-1])
            (part,) = [c for c in fs.children(bucket_dir) if c.rsplit("/", 1)[-1].startswith("part-")]
            moved.append((part, f"{child}/part-{bucket:05d}.{ext}"))
        for source, dest in moved:
            fs.rename(source, dest)
        for bucket_dir in fs.children(child):
            if fs.is_dir(bucket_dir):
                fs.delete(bucket_dir)
        fs.rename(child, target)
        _drop_checksums(fs, target)
        out[split] = {"files": len(moved)}
    return dict(sorted(out.items()))


def _drop_checksums(fs: HadoopFS, directory: str) -> None:
    """Delete the hidden .crc files Hadoop's local file system writes beside each file (its listing
    hides them): uploaded with the data, they would be read as records of the channel."""
    local = fs.local_path(directory)
    if local and os.path.isdir(local):
        for name in os.listdir(local):
            if name.startswith(".") and name.endswith(".crc"):
                os.remove(os.path.join(local, name))


def fitted_statistics(model: PipelineModel, roles: Roles, maps: Dict[str, Dict[str, int]]) -> dict:
    """What the fit split taught the pipeline: imputed values, scaler statistics, category counts."""
    stats: dict = {}
    for stage in model.stages:
        if isinstance(stage, ImputerModel):
            row = stage.surrogateDF.first()
            stats["impute"] = {c: row[f"__num_{i}"] for i, c in enumerate(roles.numeric)}
        elif isinstance(stage, StandardScalerModel):
            stats["standard"] = {c: {"mean": stage.mean[i], "std": stage.std[i]} for i, c in enumerate(roles.numeric)}
        elif isinstance(stage, MinMaxScalerModel):
            stats["minmax"] = {c: {"min": stage.originalMin[i], "max": stage.originalMax[i]}
                               for i, c in enumerate(roles.numeric)}
    stats["categories"] = {c: len(m) - 1 for c, m in maps.items()}
    return stats
