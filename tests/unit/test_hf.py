"""--to hf, without Spark: the exact Arrow types and features `datasets` needs, the card, determinism."""

import io
import json

import pyarrow.parquet as pq
import pytest

from sparkprep.export import hf, shards
from sparkprep.export.formats import FORMATS

CLASSES = {"cat": 0, "dog": 1, "emu": 2}


def sample(key, label, image=b"\x89PNG..."):
    return shards.Sample(key=key, split="train", label=label, path=f"/in/{key}.png", sha256="ab" * 32, aug_index=0,
                         width=4, height=3, channels=3, image=image, image_format="png")


def test_a_shard_has_the_types_datasets_matches_features_against():
    data = b"".join(FORMATS["hf"].shard_file([(sample("a", "dog"), 1), (sample("b", None), shards.UNLABELED_INDEX)],
                                             CLASSES))
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert str(table.schema.field("label").type) == "int64" and table.schema.field("label").nullable
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"_type": "ClassLabel", "names": ["cat", "dog", "emu"]}
    assert list(features) == table.schema.names  # every column declared, in order
    rows = table.to_pylist()
    assert [r["label"] for r in rows] == [1, None]  # unlabeled: null, never -1
    assert rows[0]["image"] == {"bytes": b"\x89PNG...", "path": f"{sample('a', 'dog').name}.png"}


def test_shards_are_the_same_bytes_every_time_and_stream_by_row_groups():
    rows = [(sample(f"k{i}", "cat", bytes([i]) * 50), 0) for i in range(250)]
    chunks = list(FORMATS["hf"].shard_file(rows, CLASSES))
    assert len(chunks) >= 3  # 100-row groups leave the writer as they are written
    assert b"".join(chunks) == b"".join(FORMATS["hf"].shard_file(rows, CLASSES))
    assert pq.ParquetFile(io.BytesIO(b"".join(chunks))).metadata.num_row_groups == 3


def test_the_record_tells_a_changed_sample_and_sizes_it_above_its_row():
    a = sample("a", "cat")
    assert FORMATS["hf"].record(a, 0) != FORMATS["hf"].record(a, 1)  # a new class index rewrites the shard
    assert FORMATS["hf"].record(a, 0) != FORMATS["hf"].record(sample("a", "cat", b"other"), 0)
    assert len(FORMATS["hf"].record(a, 0)) > len(a.image)


def test_names_and_the_card_map_val_to_validation():
    fmt = FORMATS["hf"]
    assert fmt.shard_name("val", 2, 10) == "data/val-00002-of-00010.parquet"
    assert fmt.shard_name("val", 2, None) == "data/val-00002.parquet"  # --incremental
    published = [{"split": s, "name": fmt.shard_name(s, 0, 1), "samples": n, "bytes": 10 * n}
                 for s, n in (("train", 8), ("val", 1), ("test", 1))]
    text = hf.card(CLASSES, published, {"train": {"cat": 8}, "val": {"dog": 1}, "test": {"emu": 1}},
                   {"train": {"corrupt": 2}}, {"recipe": {"size": [32, 32]}, "leakage": None})
    yaml = pytest.importorskip("yaml")
    head = yaml.safe_load(text.split("---\n")[1])
    assert head["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-[0-9]*.parquet"},
        {"split": "validation", "path": "data/val-[0-9]*.parquet"},
        {"split": "test", "path": "data/test-[0-9]*.parquet"}]
    assert head["dataset_info"]["features"][1]["dtype"]["class_label"]["names"] == {"0": "cat", "1": "dog", "2": "emu"}
    assert [(s["name"], s["num_examples"]) for s in head["dataset_info"]["splits"]] == [
        ("train", 8), ("validation", 1), ("test", 1)]
    assert "| cat | 8 | 0 | 0 |" in text and "- train: 2 corrupt" in text and '"size": [' in text
    assert "## Leakage audit" not in text  # nothing known, nothing claimed


def test_the_cards_context_is_read_only_where_a_destination_can_read_it(tmp_path):
    from sparkprep.export.destinations import read_optional

    (tmp_path / "_run_report.json").write_text('{"job": "preprocess"}')
    assert read_optional(str(tmp_path), "_run_report.json") == '{"job": "preprocess"}'
    assert read_optional(str(tmp_path / "missing"), "_run_report.json") is None
    assert read_optional("hdfs://namenode/tables/processed", "_run_report.json") is None  # read through Spark


def test_members_become_typed_columns_and_a_sample_without_one_gets_null():
    with_members = shards.Sample(key="m", split="train", label="dog", path="/in/m.png", sha256="ab" * 32, aug_index=0,
                                 width=4, height=3, channels=3, image=b"\x89PNG...", image_format="png",
                                 extras=(("json", b'{"boxes": [[1, 2, 3, 4]]}'), ("mask.png", b"\x89PNGmask"),
                                         ("cls", b"1")))
    broken = shards.Sample(key="b", split="train", label="dog", path="/in/b.png", sha256="cd" * 32, aug_index=0,
                           width=4, height=3, channels=3, image=b"\x89PNG...", image_format="png",
                           extras=(("json", b"{not json"),))
    members = ("json", "mask.png", "cls", "image")
    assert hf.member_columns(members) == [("cls", "cls", "binary"), ("image", "member_image", "binary"),
                                          ("json", "json", "json"), ("mask.png", "mask.png", "image")]
    data = b"".join(hf.shard_bytes([(with_members, 1), (broken, 1)], CLASSES, members))
    table = pq.read_table(io.BytesIO(data))
    rows = table.to_pylist()
    assert rows[0]["json"] == '{"boxes": [[1, 2, 3, 4]]}' and rows[0]["cls"] == b"1"
    assert rows[0]["mask.png"] == {"bytes": b"\x89PNGmask", "path": f"{with_members.name}.mask.png"}
    assert rows[1]["mask.png"] is None and rows[1]["cls"] is None and rows[1]["member_image"] is None
    assert json.loads(rows[1]["json"]) == "{not json"  # kept, as a JSON string: a loader never fails on it
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert list(features)[-4:] == ["cls", "member_image", "json", "mask.png"] == table.column_names[-4:]
    # a changed member changes the record, so --incremental rewrites the sample's shard
    other = shards.Sample(**{**with_members.__dict__, "extras": (("json", b"{}"),)})
    assert hf.record(other, 1) != hf.record(with_members, 1)
