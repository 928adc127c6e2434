"""Every job's summary through job_main (what spark-submit runs), for every input kind it takes.

A job that publishes and then crashes in its summary printer exits 1 after its output is
written: `split --input-kind webdataset` did, for every user of the README's example.
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import load_job


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, make_sample):
    """One tiny input of each kind: a class-folder tree, a uri table (manifest), rows (CSV), shards."""
    root = tmp_path_factory.mktemp("kinds")
    paths = []
    for i in range(6):
        path = root / "tree" / ("cat", "dog")[i % 2] / f"{i}.jpg"
        make_sample.write(str(path), make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i)))
        paths.append(str(path))
    pq.write_table(pa.table({"uri": paths}), str(root / "paths.parquet"))
    (root / "rows.csv").write_text("id,x,y\n" + "".join(f"r{i},{i},{i % 2}\n" for i in range(20)))
    (root / "shards").mkdir()
    with wds.TarWriter(str(root / "shards" / "a-000000.tar")) as sink:
        for i in range(4):
            sink.write({"__key__": f"k{i}", "jpg": make_sample.jpeg_bytes(make_sample.synthetic_scan(i, i)),
                        "cls": str(i % 2).encode()})
    return root


KINDS = {
    "folder": lambda r: ["--input", r / "tree"],
    "manifest": lambda r: ["--manifest", r / "paths.parquet", "--input", r / "tree"],
    "table": lambda r: ["--input", r / "rows.csv", "--key-by", "column:id", "--label-column", "y"],
    "webdataset": lambda r: ["--input", r / "shards" / "*.tar"],
}
CASES = [("ingest", k, "input: ") for k in ("folder", "manifest", "webdataset")] + \
        [("split", k, "split: sha256-v1") for k in ("folder", "manifest", "table", "webdataset")] + \
        [("preprocess", k, "normalize (train") for k in ("folder", "webdataset")] + \
        [("pipeline", k, "published: ") for k in ("folder", "manifest", "webdataset")]
EXTRA = {"preprocess": ["--size", "16"], "pipeline": ["--size", "16", "--to", "webdataset"]}


@pytest.mark.parametrize("job,kind,line", CASES, ids=[f"{j}-{k}" for j, k, _ in CASES])
def test_the_summary_prints_after_the_job_for_every_input_kind(spark, inputs, tmp_path, capsys, job, kind, line):
    argv = [str(a) for a in KINDS[kind](inputs)] + ["--output", str(tmp_path / "out"), "--phash", "off",
                                                     *EXTRA.get(job, [])]
    code = load_job(job).main(argv, spark=spark)
    said = capsys.readouterr()
    assert code == 0, said.err[-3000:]
    assert f"== {'processed' if job == 'pipeline' else job} summary ==" in said.out.replace("pipeline", "processed")
    assert line in said.out, said.out
    if kind != "table":
        assert "input: " in said.out and "reconciled: True" in said.out or "every shard accounted for: True" in said.out
