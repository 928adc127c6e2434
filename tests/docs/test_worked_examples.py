"""examples/: each worked example end to end, with the real spark-submit (`make test-docs`, run by CI)."""

import importlib.util
import os

import pyarrow.parquet as pq

from conftest import REPO, spark_submit

EXAMPLE = REPO / "examples" / "wfdb_features"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wfdb_features_by_patient_equal_the_plain_python_run(tmp_path):
    """Macro-sharding (a group split by patient) + micro-sharding (one record per sample) + combine."""
    records = load("make_records").make_records(str(tmp_path / "records"), patients=3, records=2)
    splits = tmp_path / "splits"
    result = spark_submit("split", "--input", tmp_path / "records", "--output", splits, "--samples", "basename",
                          "--extensions", "dat,hea", "--key-by", r"group:^(p\d+)/", "--ratios", "0.5,0.5")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "features"
    result = spark_submit("map", "--input", splits, "--output", out, "--map", "features:extract",
                          "--schema", "signal string, fs double, hr double, qrs_ms double",
                          py_files=[EXAMPLE / "features.py"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {r["sample"]: r for r in pq.read_table(str(out)).to_pylist()}
    extract = load("features").extract
    assert len(rows) == len(records) == 6
    for path in records:
        sample = os.path.relpath(path, tmp_path / "records")
        with open(f"{path}.hea", "rb") as hea, open(f"{path}.dat", "rb") as dat:
            expected = extract({"__key__": sample, "hea": hea.read(), "dat": dat.read()})
        assert rows[sample]["status"] == "ok"
        assert {k: rows[sample][k] for k in expected} == expected
    by_patient = {}
    for sample, row in rows.items():
        by_patient.setdefault(sample.split("/")[0], set()).add(row["split"])
    assert all(len(splits_of) == 1 for splits_of in by_patient.values())  # a patient never spans splits


def test_churn_features_via_spark_submit_rerun_in_place_gives_identical_files(churn, tmp_path):
    """The S4 tabular workflow's last step via spark-submit and a --config file: the same files as the
    in-session run with the same settings as flags."""
    import hashlib

    root, in_session, _ = churn
    out = tmp_path / "churn-features"
    # conf/examples/churn-features.json holds the README's flags; --input and --output override its paths
    result = spark_submit("features", "--config", REPO / "conf" / "examples" / "churn-features.json",
                          "--input", root / "split", "--output", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "== features summary ==" in result.stdout and "fitted on split 'train' only" in result.stdout
    assert "] fitting: 15 numeric, 4 categorical columns" in result.stdout  # a line per stage

    def digests(directory):
        return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(directory.rglob("part-*")) if "xgboost-csv" in p.parts or "libsvm" in p.parts}

    assert digests(out) == digests(in_session) and len(digests(out)) == 6
