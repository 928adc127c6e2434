"""Flags, --config files and usage errors, checked before any Spark work."""

import json

import pytest

from sparkprep.config import UsageError, parse_bytes, split_config


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
