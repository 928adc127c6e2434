"""Flags, --config files and usage errors, checked before any Spark work."""

import json

import pytest

from sparkprep.errors import UsageError
from sparkprep.split.flags import split_config
from sparkprep.values import parse_bytes


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "in" / "cat").mkdir(parents=True)
    (tmp_path / "in" / "cat" / "a.jpg").write_bytes(b"x")
    return tmp_path


def args(tree, *extra):
    return ["--input", str(tree / "in"), "--output", str(tree / "out"), *extra]


def test_defaults_for_files(tree):
    cfg = split_config(args(tree))
    assert (cfg.input_kind, str(cfg.key_by), cfg.ratios, cfg.names, cfg.seed, cfg.format) == \
        ("files", "content", (0.8, 0.1, 0.1), ("train", "val", "test"), "0", "parquet")


def test_flags_override_config_file(tree):
    conf = tree / "job.json"
    conf.write_text(json.dumps({"ratios": "0.8,0.2", "seed": "7", "key-by": "path", "format": "delta"}))
    cfg = split_config(args(tree, "--config", str(conf), "--seed", "9"))
    assert (cfg.ratios, cfg.names, cfg.seed, str(cfg.key_by), cfg.format) == ((0.8, 0.2), ("train", "test"), "9", "path", "delta")


@pytest.mark.parametrize("extra,message", [
    (["--ratios", "0.7,0.2"], "--ratios: expected ratios summing to 1"),
    (["--ratios", "0.5,0.5", "--names", "a,b,c"], "--names: expected 2 names"),
    (["--key-by", "group:p[0-9]+"], "capture group"),
    (["--key-by", "column:id"], "needs --input-kind table"),
    (["--format", "orc"], "--format: expected one of parquet, delta"),
    (["--validate", "deep"], "--validate: expected one of header, full"),
    (["--stratify", "approx"], "--stratify: expected one of none, exact"),
    (["--max-file-bytes", "lots"], "--max-file-bytes: expected a size"),
    (["--label-regex", "([a-z]"], "--label-regex: expected a valid regular expression"),
    (["--labels", "/nonexistent.csv"], "--labels: expected an existing CSV file"),
    (["--unknown-flag", "1"], "unrecognized arguments"),
])
def test_bad_usage_raises_one_line_usage_error(tree, extra, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[")) as info:
        split_config(args(tree, *extra))
    assert "\n" not in str(info.value)


def test_missing_input_and_output_inside_input_are_usage_errors(tree):
    with pytest.raises(UsageError, match="--input: expected an existing path"):
        split_config(["--input", str(tree / "nope"), "--output", str(tree / "out")])
    with pytest.raises(UsageError, match="--output: expected a path outside --input"):
        split_config(["--input", str(tree / "in"), "--output", str(tree / "in" / "out")])


def test_unknown_config_file_setting_is_a_usage_error(tree):
    conf = tree / "job.json"
    conf.write_text(json.dumps({"ratio": "0.5,0.5"}))
    with pytest.raises(UsageError, match="unknown setting 'ratio'"):
        split_config(args(tree, "--config", str(conf)))


def test_tabular_input_needs_a_column_key(tree):
    csv = tree / "rows.csv"
    csv.write_text("id,x\n1,2\n")
    with pytest.raises(UsageError, match="expected column:NAME for tabular input"):
        split_config(["--input", str(csv), "--output", str(tree / "o")])
    cfg = split_config(["--input", str(csv), "--output", str(tree / "o"), "--key-by", "column:id"])
    assert cfg.input_kind == "table"


def test_sizes_parse_with_binary_units():
    assert parse_bytes("256MB") == 256 << 20 and parse_bytes("64k") == 64 << 10 and parse_bytes(7) == 7


@pytest.mark.parametrize("setting,message", [
    ({"seed": 42.0}, "--config seed: expected a whole number, got 42.0"),
    ({"max_pixels": True}, "--config max-pixels: expected a string or whole number, got true"),
    ({"names": 3}, "--config names: expected a string, got 3"),
    ({"key_by": ["path"]}, "--config key-by: expected a single value, got a list"),
    ({"ratios": [0.5, None, 0.5]}, "expected a string or number item, got null"),
])
def test_config_file_values_are_type_checked_never_coerced(tree, setting, message):
    conf = tree / "job.json"
    conf.write_text(json.dumps(setting))
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        split_config(args(tree, "--config", str(conf)))


def test_config_file_lists_and_whole_numbers_are_canonicalised_once(tree):
    from sparkprep.preprocess.flags import preprocess_config

    conf = tree / "job.json"
    conf.write_text(json.dumps({"augment_splits": ["train", "val"], "seed": 42, "copies": 2,
                                "augment": "hflip", "ratios": [0.8, 0.1, 0.1], "extensions": ["jpg", "png"]}))
    cfg = preprocess_config(args(tree, "--config", str(conf)))
    assert (cfg.augment_splits, cfg.seed, cfg.copies, cfg.ratios, cfg.extensions) == \
        (("train", "val"), "42", 2, (0.8, 0.1, 0.1), ("jpg", "png"))
    conf.write_text(json.dumps({"copies": 2.9, "augment": "hflip"}))
    with pytest.raises(UsageError, match="--config copies: expected a whole number, got 2.9"):
        preprocess_config(args(tree, "--config", str(conf)))


@pytest.mark.parametrize("extra,message", [
    (["--augment", "hflip", "--copies", "1", "--augment-splits", "trian"], "--augment-splits: expected names among"),
    (["--size", "100000"], "--size: expected at most 8192 pixels per side"),
    (["--max-pixels", "true"], "--max-pixels: expected a whole number, got 'true'"),
    (["--copies", "2.9"], "--copies: expected a whole number"),
    (["--names", "train,🙂" * 1, "--ratios", "0.5,0.5"], "--names: expected split names of letters"),
    (["--names", "a,b" + "é" * 40, "--ratios", "0.5,0.5"], "at most 64 UTF-8 bytes"),
    (["--report", "/nonexistent-dir/report.json"], "--report: expected a writable directory"),
])
def test_preprocess_bounds_and_names_are_checked_before_spark(tree, extra, message):
    from sparkprep.preprocess.flags import preprocess_config

    with pytest.raises(UsageError, match=message):
        preprocess_config(args(tree, *extra))


def test_nested_s3_spellings_and_bucket_roots_are_refused():
    from sparkprep.ingest.flags import ingest_config

    with pytest.raises(UsageError, match="expected a path outside --input"):
        ingest_config(["--input", "s3://bucket/raw", "--output", "s3a://bucket/raw/out"])
    with pytest.raises(UsageError, match="expected a prefix inside the bucket"):
        ingest_config(["--input", "s3://bucket/raw", "--output", "s3://other/"])


def test_endpoint_credentials_never_reach_the_report():
    from sparkprep.export.flags import export_config
    from sparkprep.runlog import config_dict
    from sparkprep.uris import redact_uri

    assert redact_uri("https://KEY:SECRET@host:9000") == "https://***@host:9000"
    with pytest.raises(UsageError) as info:
        export_config(["--input", "s3://b/in", "--output", "s3://b/out", "--to", "webdataset",
                       "--s3-endpoint", "https://KEY:SECRET@host:9000/path"])
    assert "SECRET" not in str(info.value)
    cfg = export_config(["--input", "s3://b/in", "--output", "s3://b/out", "--to", "webdataset",
                         "--s3-endpoint", "https://KEY:SECRET@host:9000"])
    assert "SECRET" not in json.dumps(config_dict(cfg))


def test_max_quarantine_fraction_is_a_number_from_0_to_1(tree):
    assert split_config(args(tree)).max_quarantine_fraction == 0.5
    conf = tree / "job.json"
    conf.write_text(json.dumps({"max_quarantine_fraction": 0.25}))
    assert split_config(args(tree, "--config", str(conf))).max_quarantine_fraction == 0.25
    with pytest.raises(UsageError, match="--max-quarantine-fraction: expected a number from 0 to 1, got '2'"):
        split_config(args(tree, "--max-quarantine-fraction", "2"))


@pytest.mark.parametrize("to,given,expected", [
    ("hf", [], 500 << 20), ("mds", [], 1 << 26), ("webdataset", [], 256 << 20), ("hf,mds", [], 256 << 20),
    ("mds", ["--shard-size", "1MB"], 1 << 20), ("mds", ["--shard-count", "3"], None)])
def test_a_format_alone_brings_its_own_shard_size_and_a_mix_takes_the_common_one(tree, to, given, expected):
    """--to hf alone: 500MB parquet files (the Hub's advice); --to mds alone: MDSWriter's 64 MiB; else 256MB."""
    from sparkprep.pipeline.flags import pipeline_config

    assert pipeline_config(args(tree, "--to", to, *given)).shard_size == expected
