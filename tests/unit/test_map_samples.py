"""User functions over samples, without Spark: grouping, the failure policy, typed fields."""

import pyarrow as pa
import pytest

from sparkprep.map.samples import INPUT_COLUMNS, load_function, mapped_batches, parse_schema, sample_seed


def rows(*samples):
    """(sample, split, {member: bytes}) -> one Arrow batch per sample, sorted by (sample, member)."""
    out = []
    for sample, split, members in samples:
        records = [{"key": sample, "split": split, "label": "x", "path": f"file:/d/{sample}.{m}", "sha256": "ab" * 32,
                    "status": "ok", "error": None, "sample": sample, "member": m, "content": data}
                   for m, data in sorted(members.items())]
        out.append(pa.RecordBatch.from_pylist(records, schema=pa.schema(
            [(c, pa.binary() if c == "content" else pa.string()) for c in INPUT_COLUMNS])))
    return out


def run(function, batches, schema=None, **kwargs):
    out = pa.Table.from_batches(list(mapped_batches(iter(batches), function, parse_schema(schema), "7", **kwargs)))
    return {r["sample"]: r for r in out.to_pylist()}


def test_a_sample_arrives_whole_as_a_webdataset_dict_even_across_batches():
    seen = []

    def fn(sample):
        seen.append(sample)
        return {"n": len(sample["jpg"]) + len(sample["json"]), "txt": sample["json"].upper()}

    first, second = rows(("a", "train", {"jpg": b"123", "json": b"{}"}), ("b", "val", {"jpg": b"1", "json": b"[]"}))
    split_batches = [first.slice(0, 1), first.slice(1, 1), second]  # sample a spans two batches
    out = run(fn, split_batches, "n int")
    assert [s["__key__"] for s in seen] == ["a", "b"]
    assert seen[0]["__split__"] == "train" and seen[0]["__seed__"] == sample_seed("7", "a")
    assert out["a"]["n"] == 5 and out["a"]["members"] == [("txt", b"{}")] and out["a"]["status"] == "ok"
    assert out["a"]["path"] == "file:/d/a"


def test_an_exception_is_a_map_error_with_its_last_frame_and_the_others_are_ok():
    def fn(sample):
        if sample["__key__"] == "bad":
            raise ValueError("no header")
        return {"ok": b"1"}

    out = run(fn, rows(("good", "train", {"jpg": b"1"}), ("bad", "train", {"jpg": b"2"})))
    assert out["good"]["status"] == "ok"
    assert out["bad"]["status"] == "map_error"
    assert out["bad"]["error"].startswith("ValueError: no header at test_map_samples.py:") and "in fn" in out["bad"]["error"]


def test_none_is_filtered_and_a_wrongly_typed_field_is_a_map_error_naming_it():
    out = run(lambda s: None, rows(("a", "train", {"jpg": b"1"})))
    assert out["a"]["status"] == "filtered"
    out = run(lambda s: {"hr": "fast"}, rows(("a", "train", {"jpg": b"1"})), "hr double")
    assert out["a"]["status"] == "map_error" and "field 'hr': expected double" in out["a"]["error"]
    out = run(lambda s: {"extra": 3.5}, rows(("a", "train", {"jpg": b"1"})), "hr double")
    assert "field 'extra': float is neither bytes" in out["a"]["error"]


def test_non_string_keys_are_a_map_error_naming_the_key_not_a_failed_task():
    for result, named in (({1: b"x"}, "key 1 (int)"), ({"jpg": b"x", (2, 3): b"y"}, "key (2, 3) (tuple)"),
                          ({None: b"x"}, "key None (NoneType)")):
        out = run(lambda s, result=result: result, rows(("a", "train", {"jpg": b"1"}), ("b", "train", {"jpg": b"2"})))
        assert {r["status"] for r in out.values()} == {"map_error"}
        assert out["a"]["error"].startswith(named) and "expected string keys" in out["a"]["error"]


def test_batch_functions_get_lists_and_a_failing_batch_marks_its_samples():
    def per_batch(samples):
        return [{"k": s["__key__"].encode()} for s in samples]

    out = run(per_batch, rows(("a", "t", {"jpg": b"1"}), ("b", "t", {"jpg": b"2"})), batched=True, batch_samples=1)
    assert out["b"]["members"] == [("k", b"b")]
    out = run(lambda samples: [], rows(("a", "t", {"jpg": b"1"})), batched=True)
    assert out["a"]["status"] == "map_error" and "returned list of 0 items for 1 samples" in out["a"]["error"]


def test_quarantined_samples_pass_through_without_calling_the_function():
    batch = rows(("a", "train", {"jpg": b"1"}))[0].to_pylist()
    batch[0].update(status="corrupt", error="truncated")
    out = run(lambda s: pytest.fail("called"), [pa.RecordBatch.from_pylist(batch)])
    assert (out["a"]["status"], out["a"]["error"]) == ("corrupt", "truncated")


def test_bad_schemas_and_missing_functions_are_usage_errors():
    with pytest.raises(ValueError, match="--schema: expected 'name type, ...'"):
        parse_schema("hr decimal(3,1)")
    with pytest.raises(ValueError, match="reserved"):
        parse_schema("split string")
    with pytest.raises(ValueError, match="cannot import 'no_such_module'"):
        load_function("no_such_module:fn")
    with pytest.raises(ValueError, match="has no function 'nope'"):
        load_function("json:nope")
    assert load_function("json:dumps")({"a": 1}) == '{"a": 1}'


def test_output_member_names_that_could_escape_a_directory_are_map_errors():
    out = run(lambda s: {"../../etc/x": b"1"}, rows(("a", "train", {"jpg": b"1"})))
    assert out["a"]["status"] == "map_error" and "member '../../etc/x'" in out["a"]["error"]
    out = run(lambda s: {"seg.png": b"1", ".hidden": b"2"}, rows(("b", "train", {"jpg": b"1"})))
    assert out["b"]["status"] == "map_error"
