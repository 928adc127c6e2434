"""--incremental: a dataset grows by 10%; only the new and changed files are read, and the table
equals a full run's, row for row."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers import export, hide, pipeline, preprocess, splitter, table_rows


SPLIT = ["--ratios", "0.7,0.15,0.15", "--seed", "7"]


def write_tree(make_sample, root, first, count):
    for i in range(first, first + count):
        name = ("cat", "dog")[i % 2]
        make_sample.write(str(root / name / f"{name}{i:03d}.jpg"),
                          make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 2, i)))


rows = table_rows


split = splitter(*SPLIT)


# the near-duplicate audit (--phash on) is many small Spark jobs: once is enough here
@pytest.mark.parametrize("fmt,phash", [("parquet", "on"), ("delta", "off")])
def test_growing_by_10_percent_reads_only_the_new_and_changed_files(spark, make_sample, tmp_path, fmt, phash):
    tree, out, full = tmp_path / "in", tmp_path / "out", tmp_path / "full"
    write_tree(make_sample, tree, 0, 40)
    fmt = (fmt, "--phash", phash)
    first = split(spark, tree, out, "--incremental", "--format", *fmt)
    assert first["incremental"] == {"previous": None, "state": "_sparkprep_listing", "listed": 40, "read": 40,
                                    "kept": 0, "deleted": 0, "full_read": "no previous output"}
    # grow by 10%, change one file, delete one
    write_tree(make_sample, tree, 40, 4)
    changed, deleted = tree / "cat" / "cat002.jpg", tree / "dog" / "dog003.jpg"
    changed.write_bytes(make_sample.jpeg_bytes(make_sample.synthetic_scan(1, 999)))
    deleted.unlink()
    # Every unchanged file now holds other bytes of its own size and mtime: a run that read one
    # would differ from the full run on the real bytes below.
    restore = hide([p for p in tree.rglob("*.jpg") if p != changed and int(p.stem[3:]) < 40])
    second = split(spark, tree, out, "--incremental", "--format", *fmt)
    assert second["incremental"] == {"previous": f"file:{out}", "state": "_sparkprep_listing", "listed": 43,
                                     "read": 5, "kept": 38, "deleted": 1, "unversioned": 0}
    restore()
    split(spark, tree, full, "--format", *fmt)
    assert rows(out) == rows(full)
    assert second["reconciliation"]["reconciled"] and second["rows"] == 43
    if fmt[0] == "delta":
        report = json.loads((out / "_run_report.json").read_text())
        assert report["output"]["delta_txn"] == {"app_id": "sparkprep", "version": 2}


def test_changed_settings_read_everything_again_and_say_why(spark, make_sample, tmp_path):
    tree, out = tmp_path / "in", tmp_path / "out"
    write_tree(make_sample, tree, 0, 6)
    split(spark, tree, out, "--phash", "off")  # without --incremental: no listing state
    again = split(spark, tree, out, "--incremental", "--phash", "off")
    assert again["incremental"]["read"] == 6 and "no listing state" in again["incremental"]["full_read"]
    other = split(spark, tree, out, "--incremental", "--phash", "off", "--validate", "full")
    assert other["incremental"]["full_read"] == "settings that decide a row changed since the previous run: validate"
    assert split(spark, tree, out, "--incremental", "--phash", "off", "--validate", "full")["incremental"]["kept"] == 6


def test_dropping_labels_reads_everything_again_and_gives_folder_labels(spark, make_sample, tmp_path):
    """--labels decides a row's label: a run without it must not keep the previous run's labels."""
    tree, out = tmp_path / "in", tmp_path / "out"
    write_tree(make_sample, tree, 0, 4)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.relative_to(tree)},from-csv\n" for p in tree.rglob("*.jpg")))
    split(spark, tree, out, "--incremental", "--phash", "off", "--labels", str(labels))
    assert {r["label"] for r in rows(out)} == {"from-csv"}
    again = split(spark, tree, out, "--incremental", "--phash", "off")
    assert again["incremental"]["kept"] == 0 and "labels" in again["incremental"]["full_read"]
    assert {r["label"] for r in rows(out)} == {"cat", "dog"}


def test_a_previous_output_of_another_sparkprep_version_is_read_again(spark, make_sample, tmp_path):
    tree, out = tmp_path / "in", tmp_path / "out"
    write_tree(make_sample, tree, 0, 3)
    split(spark, tree, out, "--incremental", "--phash", "off")
    report = json.loads((out / "_run_report.json").read_text())
    report["versions"]["sparkprep"] = "0.0.1"
    (out / "_run_report.json").write_text(json.dumps(report))
    (out / "._run_report.json.crc").unlink()  # Hadoop's checksum of the old text would make it unreadable
    again = split(spark, tree, out, "--incremental", "--phash", "off")
    assert again["incremental"]["kept"] == 0 and "written by sparkprep 0.0.1" in again["incremental"]["full_read"]


def test_a_previous_output_with_another_hash_version_is_read_again(spark, make_sample, tmp_path, monkeypatch):
    from sparkprep.audit.spark.rows import with_phash_version
    from sparkprep.ingest.spark import incremental

    tree, out = tmp_path / "in", tmp_path / "out"
    write_tree(make_sample, tree, 0, 3)
    split(spark, tree, out, "--incremental")
    again = split(spark, tree, out, "--incremental")
    assert again["incremental"]["kept"] == 3  # same hash version (phash-v1, unmarked): reused
    real = incremental.read_table
    # as if the previous rows had been hashed from a transform's decode (the pipeline's phash-v2)
    monkeypatch.setattr(incremental, "read_table", lambda s, uri: with_phash_version(real(s, uri), "phash-v2"))
    other = split(spark, tree, out, "--incremental")
    assert other["incremental"]["kept"] == 0
    assert other["incremental"]["full_read"] == "the previous output's hashes are phash-v2, this run computes phash-v1"
    # as if the previous rows had been written before the DCT directions: every file is read again, so that no
    # kept row lacks one (the audit would fall back to phash256 for the whole table)
    monkeypatch.setattr(incremental, "read_table", lambda s, uri: real(s, uri).drop("dct_direction"))
    older = split(spark, tree, out, "--incremental")
    assert older["incremental"]["kept"] == 0
    assert older["incremental"]["full_read"] == ("the previous output has no dct_direction column (written before "
                                                 "the DCT direction)")


def test_preprocess_transforms_only_new_and_changed_samples_and_equals_a_full_run(spark, make_sample, tmp_path):
    """preprocess --incremental on a split table that grew: kept samples are not decoded again (their bytes in
    the table are replaced by junk of the same sha256 column), and the result equals a full run's."""
    import pyarrow.parquet as pq

    tree, table, out, full = tmp_path / "in", tmp_path / "table", tmp_path / "out", tmp_path / "full"
    recipe = ("--size", "32", "--augment", "hflip", "--copies", "1", "--seed", "5")
    write_tree(make_sample, tree, 0, 20)
    split(spark, tree, table, "--phash", "off")
    first = preprocess(spark, "--input", table, "--output", out, "--incremental", *recipe)
    assert first["incremental"] == {"previous": None, "listed": 20, "kept": 0, "transformed": 20, "deleted": 0,
                                    "full_run": "no previous output"}
    write_tree(make_sample, tree, 20, 2)
    changed = tree / "cat" / "cat002.jpg"
    changed.write_bytes(make_sample.jpeg_bytes(make_sample.synthetic_scan(1, 999)))
    (tree / "dog" / "dog003.jpg").unlink()
    split(spark, tree, table, "--phash", "off")
    real = {f: pq.read_table(f) for f in table.rglob("*.parquet")}
    for name, part in real.items():  # every kept sample's bytes become junk: decoding one would show
        junk = [c if p.endswith(("cat002.jpg", "cat020.jpg", "dog021.jpg")) or c is None else b"\xff" * len(c)
                for p, c in zip(part.column("path").to_pylist(), part.column("content").to_pylist())]
        pq.write_table(part.set_column(part.schema.get_field_index("content"), part.schema.field("content"),
                                       [junk]), name)
        (name.parent / f".{name.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the real bytes
    cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
    second = preprocess(spark, "--input", table, "--output", out, "--incremental", *recipe)
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == cached  # the matching's frame is freed
    # deleted: dog003 alone (cat002 changed: it is listed, and transformed)
    assert second["incremental"] == {"previous": f"file:{out}", "listed": 21, "kept": 18, "transformed": 3,
                                     "deleted": 1}
    for name, part in real.items():
        pq.write_table(part, name)
    preprocess(spark, "--input", table, "--output", full, *recipe)
    done = rows(full)
    assert rows(out) == done and len(done) == 21 + sum(r["split"] == "train" for r in done if r["aug_index"] == 0)
    assert second["normalization"] == json.loads((full / "_run_report.json").read_text())["normalization"]
    other = preprocess(spark, "--input", table, "--output", out, "--incremental", *recipe[:-1], "6")
    assert other["incremental"]["kept"] == 0
    assert other["incremental"]["full_run"] == "settings that decide a row changed since the previous run: spec"


def grow_and_hide(make_sample, tree, first, count):
    """The tree grows by `count` files from `first`, cat002 changes and dog003 goes; every other file gets
    other bytes of its own size and mtime (a run that read one would differ). Returns what restores them."""
    write_tree(make_sample, tree, first, count)
    changed = tree / "cat" / "cat002.jpg"
    changed.write_bytes(make_sample.jpeg_bytes(make_sample.synthetic_scan(1, 999)))
    (tree / "dog" / "dog003.jpg").unlink()
    return hide([p for p in tree.rglob("*.jpg") if p != changed and int(p.stem[3:]) < first])


# the one pass (the workers write; hashes from the transform's decode), the one pass with Spark writing (Delta),
# and two passes (--stratify exact: ingest, then transform)
@pytest.mark.parametrize("extra", [("--phash", "on"),
                                   pytest.param(("--phash", "off", "--format", "delta"), marks=pytest.mark.slow),
                                   pytest.param(("--phash", "off", "--stratify", "exact"), marks=pytest.mark.slow)])
def test_pipeline_reads_and_transforms_only_new_and_changed_files_and_equals_a_full_run(spark, make_sample,
                                                                                        tmp_path, extra):
    tree, out, full = tmp_path / "in", tmp_path / "out", tmp_path / "full"
    flags = ("--size", "32", "--augment", "hflip", "--copies", "1", *SPLIT, *extra)
    write_tree(make_sample, tree, 0, 20)
    first = pipeline(spark, "--input", tree, "--output", out, "--incremental", *flags)
    assert first["stages"]["processed"]["incremental"]["full_run"] == "no previous output"
    restore = grow_and_hide(make_sample, tree, 20, 2)
    second = pipeline(spark, "--input", tree, "--output", out, "--incremental", *flags)
    restore()
    pipeline(spark, "--input", tree, "--output", full, *flags)
    for table in ("splits", "processed"):
        assert rows(out / table) == rows(full / table), table
    processed = second["stages"]["processed"]
    if "exact" in extra:  # exact stratification may move kept files' splits: those are transformed again
        assert processed["incremental"]["kept"] + processed["incremental"]["transformed"] == 21
        assert second["stages"]["splits"]["incremental"]["read"] == 3
    else:
        assert processed["incremental"] == {"previous": f"file:{out}/processed", "listed": 21, "kept": 18,
                                            "transformed": 3, "deleted": 1}
        assert second["stages"]["splits"]["incremental"]["read"] == 3
    if "on" in extra:  # the audit over the whole table, kept rows and new
        assert second["stages"]["splits"]["near_duplicates"] == json.loads(
            (full / "splits" / "_run_report.json").read_text())["near_duplicates"] | {
            "seconds": second["stages"]["splits"]["near_duplicates"]["seconds"]}
    assert processed["normalization"] == json.loads((full / "processed" / "_run_report.json").read_text())[
        "normalization"]
    other = pipeline(spark, "--input", tree, "--output", out, "--incremental", *flags, "--size", "24")
    assert other["stages"]["processed"]["incremental"]["kept"] == 0
    assert other["stages"]["processed"]["incremental"]["full_run"] == \
        "settings that decide a row changed since the previous run: spec"


# the workers write the tables (local parquet) and carry kept files' rows as written; Spark writes them (Delta)
@pytest.mark.parametrize("extra", [(), pytest.param(("--format", "delta"), marks=pytest.mark.slow)])
def test_pipeline_relabels_kept_rows_when_the_labels_csv_changed_in_place(spark, make_sample, tmp_path, extra):
    """The --labels path is the same, its rows are not: kept rows take the CSV's labels of this run (they
    kept the previous run's, and published them). Where Spark writes the tables, the kept rows are relabelled
    without transforming their images again; where the workers do, the relabelled files are made again."""
    tree, out, full = tmp_path / "in", tmp_path / "out", tmp_path / "full"
    write_tree(make_sample, tree, 0, 6)
    labels = tmp_path / "labels.csv"
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*.jpg"))
    labels.write_text("path,label\n" + "".join(f"{n},first\n" for n in names))
    flags = ("--size", "32", "--phash", "off", "--labels", labels, *SPLIT, *extra)
    pipeline(spark, "--input", tree, "--output", out, "--incremental", *flags)
    labels.write_text("path,label\n" + "".join(f"{n},{'second' if i % 2 else 'first'}\n" for i, n in enumerate(names)))
    again = pipeline(spark, "--input", tree, "--output", out, "--incremental", *flags)
    if extra:
        assert again["stages"]["processed"]["incremental"]["kept"] == 6  # nothing read or transformed again
    else:
        assert again["stages"]["processed"]["incremental"] == {
            "previous": f"file:{out}/processed", "listed": 6, "kept": 3, "transformed": 3, "deleted": 0,
            "relabelled": 3}
        assert again["stages"]["splits"]["incremental"]["relabelled"] == 3
    pipeline(spark, "--input", tree, "--output", full, *flags)
    for table in ("splits", "processed"):
        assert rows(out / table) == rows(full / table), table
        assert sorted(r["label"] for r in rows(out / table)) == ["first"] * 3 + ["second"] * 3


def test_export_imagefolder_writes_only_new_and_changed_files_and_equals_a_full_export(spark, make_sample, tmp_path):
    """export --incremental: kept files stay in place (same inode: never rewritten), new and changed samples and a
    file removed from the export are written, a deleted sample's file goes; the tree equals a full export's."""
    tree, table, out, full = tmp_path / "in", tmp_path / "table", tmp_path / "out", tmp_path / "full"
    write_tree(make_sample, tree, 0, 20)
    split(spark, tree, table, "--phash", "off")
    first = export(spark, "--input", table, "--output", out, "--to", "imagefolder", "--incremental")
    assert first["incremental"] == {"unit": "files", "files": 20, "kept": 0, "written": 20, "removed": 0,
                                    "full_run": "no previous export in --output"}
    write_tree(make_sample, tree, 20, 2)
    (tree / "cat" / "cat002.jpg").write_bytes(make_sample.jpeg_bytes(make_sample.synthetic_scan(1, 999)))
    (tree / "dog" / "dog003.jpg").unlink()
    split(spark, tree, table, "--phash", "off")
    images = sorted(out.rglob("*.jpg"))  # named by key hashes: found by their bytes (the originals, exported)
    lost = next(p for p in images if p.read_bytes() == (tree / "cat" / "cat004.jpg").read_bytes())
    lost.unlink()  # gone from place: written again, though the manifest lists it
    before = {p.relative_to(out): p.stat().st_ino for p in images if p != lost}
    second = export(spark, "--input", table, "--output", out, "--to", "imagefolder", "--incremental")
    # cat002's new bytes give it a new key, so a new name: its old file goes with dog003's
    assert second["incremental"] == {"unit": "files", "files": 21, "kept": 17, "written": 4, "removed": 2,
                                           "full_run": None}
    after = {p.relative_to(out): p.stat().st_ino for p in out.rglob("*.jpg")}
    untouched = {p for p, inode in after.items() if before.get(p) == inode}
    changed = next(p for p in after if (out / p).read_bytes() == (tree / "cat" / "cat002.jpg").read_bytes())
    assert len(untouched) == 17 and lost.relative_to(out) in after and not {lost.relative_to(out), changed} & untouched
    export(spark, "--input", table, "--output", full, "--to", "imagefolder")

    def files(root):
        found = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()
                 and not p.name.startswith(("_", "."))}
        manifest = json.loads(found.pop(Path("manifest.json")))
        del manifest["config"]["output"]
        return found, manifest

    assert files(out) == files(full) and len(files(full)[0]) == 21
    processed = tmp_path / "processed"  # the same samples resized: the same names, other bytes
    preprocess(spark, "--input", table, "--output", processed, "--size", "24", "--encode", "jpeg")
    resized = export(spark, "--input", processed, "--output", out, "--to", "imagefolder", "--incremental")
    assert resized["incremental"] == {"unit": "files", "files": 21, "kept": 0, "written": 21, "removed": 0,
                                            "full_run": None}
    again = export(spark, "--input", processed, "--output", out, "--to", "imagefolder", "--incremental")
    assert again["incremental"] == {"unit": "files", "files": 21, "kept": 21, "written": 0, "removed": 0,
                                          "full_run": None}


def test_export_imagefolder_to_s3_keeps_what_the_listing_shows_in_place(spark, make_sample, tmp_path, s3_endpoint):
    """On S3 the export is listed once: unchanged objects are neither uploaded nor asked for one by one; an
    object deleted by hand is uploaded again."""
    import boto3

    tree, table, uri = tmp_path / "in", tmp_path / "table", "s3://sparkprep-inc/folders"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="sparkprep-inc")
    write_tree(make_sample, tree, 0, 6)
    split(spark, tree, table, "--phash", "off")
    flags = ("--input", table, "--output", uri, "--to", "imagefolder", "--incremental", "--s3-endpoint", s3_endpoint)
    assert export(spark, *flags)["incremental"]["written"] == 6
    assert export(spark, *flags)["incremental"] == {"unit": "files", "files": 6, "kept": 6, "written": 0, "removed": 0,
                                                    "full_run": None}
    images = [o["Key"] for o in client.list_objects_v2(Bucket="sparkprep-inc", Prefix="folders/")["Contents"]
              if o["Key"].endswith(".jpg")]
    client.delete_object(Bucket="sparkprep-inc", Key=images[0])
    assert export(spark, *flags)["incremental"] == {"unit": "files", "files": 6, "kept": 5, "written": 1, "removed": 0,
                                                    "full_run": None}
    assert client.head_object(Bucket="sparkprep-inc", Key=images[0])["ContentLength"] > 0


@pytest.mark.parametrize("to", ["webdataset", pytest.param("tfrecord", marks=pytest.mark.slow),
                                pytest.param("recordio", marks=pytest.mark.slow), "mds"])
def test_export_shards_keep_unchanged_samples_in_place_and_put_new_ones_in_new_shards(spark, make_sample, tmp_path, to):
    """export --incremental --to webdataset|tfrecord|recordio|mds: samples whose record is unchanged stay in their
    shard; a shard that lost a sample is rewritten, the others stay in place (same inode); new samples go to new
    shards. Every
    sample is there once, with a full export's bytes, and the placement writes the same shards again when they are
    lost. A TFRecord export with --incremental names its shards without -of-N (the count grows); RecordIO's kept
    records keep their ids, and each split's ids, .idx files and .lst agree; MDS's index.json lists every shard."""
    tree, table, out, full = tmp_path / "in", tmp_path / "table", tmp_path / "out", tmp_path / "full"
    ext = {"webdataset": ".tar", "tfrecord": ".tfrecord", "recordio": ".rec", "mds": ".mds"}[to]

    def scans(first, count):  # ~25 KB each: two to a 64 KB shard
        for i in range(first, first + count):
            name = ("cat", "dog")[i % 2]
            make_sample.write(str(tree / name / f"{name}{i:03d}.jpg"),
                              make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 2, i, 256)))

    def plain(name):  # a full TFRecord export's name, as an --incremental export names the shard
        stem, _, total = name[:-len(ext)].rpartition("-of-")
        return f"{stem}{ext}" if stem and total.isdigit() else name

    def shard_files(root):  # MDS: <split>/shard.NNNNN.mds
        return {plain(str(p.relative_to(root))): (p.stat().st_ino, p.read_bytes()) for p in root.glob(f"**/*{ext}")}

    def samples(root):
        found = {}
        for shard in sorted(root.glob(f"**/*{ext}")):
            if to == "webdataset":
                import webdataset as wds

                records = [({k: v for k, v in s.items() if not k.startswith("__")}, s["__key__"])
                           for s in wds.WebDataset(str(shard), shardshuffle=False)]
            elif to == "recordio":
                records = recordio_samples(root, shard)
            elif to == "mds":
                from conftest import read_mds_spec

                records = [(s, s["key"]) for s in read_mds_spec(shard.read_bytes())[1]]
            else:
                from tfrecord.reader import tfrecord_loader

                records = [({k: bytes(v) for k, v in r.items()}, bytes(r["image/key/sha256"]).decode())
                           for r in tfrecord_loader(str(shard), None)]
            for sample, key in records:
                assert key not in found
                found[key] = sample
        return found

    def recordio_samples(root, shard):  # (label, image) by image sha256; the ids agree with the .idx and .lst
        import hashlib
        import struct

        from conftest import read_recordio_spec

        split = shard.name.rsplit("-", 1)[0]
        listed = {int(line.split("\t")[0]) for line in (root / f"{split}.lst").read_text().splitlines()}
        ids, out = {}, []
        for offset, payload in read_recordio_spec(shard.read_bytes()):
            _, label, record_id, _ = struct.unpack("<IfQQ", payload[:24])
            ids[record_id] = offset
            assert record_id in listed
            out.append(({"label": label, "image": payload[24:]}, hashlib.sha256(payload[24:]).hexdigest()))
        index = {int(a): int(b) for a, b in (line.split("\t") for line in
                                            shard.with_suffix(".idx").read_text().splitlines())}
        assert index == ids
        return out

    def numbered(names):  # split -> shard numbers
        found = {}
        for name in names:
            split, _, number = name[:-len(ext)].replace("/shard.", "-").rpartition("-")
            found.setdefault(split, set()).add(int(number))
        return found

    scans(0, 24)
    split(spark, tree, table, "--phash", "off")
    flags = ("--input", table, "--output", out, "--to", to, "--shard-size", "64KB", "--incremental")
    first = export(spark, *flags)
    assert first["incremental"]["kept"] == 0 and first["incremental"]["full_run"] == "no previous export in --output"
    before = shard_files(out)
    export(spark, "--input", table, "--output", full, "--to", to, "--shard-size", "64KB")
    assert {n: b for n, (_, b) in shard_files(full).items()} == {n: b for n, (_, b) in before.items()}  # a full one's
    if to == "tfrecord":
        assert all("-of-" in p.name for p in full.glob(f"*{ext}")) and not any("-of-" in n for n in before)
    scans(24, 4)
    (tree / "dog" / "dog003.jpg").unlink()
    split(spark, tree, table, "--phash", "off")
    second = export(spark, *flags)["incremental"]
    after = shard_files(out)
    untouched = {n for n in after if n in before and after[n][0] == before[n][0]}
    assert second["full_run"] is None and second["kept"] == len(untouched) >= len(before) - 2
    assert second["written"] == len(after) - len(untouched) and second["files"] == len(after)
    assert set(before) <= set(after)  # no shard of the first export is gone: a lost sample rewrites its shard
    added, old = numbered(set(after) - set(before)), numbered(before)
    assert added and all(min(numbers) > max(old.get(split, {-1})) for split, numbers in added.items())
    assert all(after[n][1] == before[n][1] for n in untouched)  # a kept shard still holds what it held
    shutil.rmtree(full)
    export(spark, "--input", table, "--output", full, "--to", to, "--shard-size", "64KB")
    assert samples(out) == samples(full) and len(samples(out)) == 27
    if to == "recordio":  # each split's .lst lists every record id of its shards once, in shard order
        import struct

        from conftest import read_recordio_spec

        for lst in out.glob("*.lst"):
            listed = [int(line.split("\t")[0]) for line in lst.read_text().splitlines()]
            shards_ids = [struct.unpack("<IfQQ", payload[:24])[2]
                          for rec in sorted(out.glob(f"{lst.stem}-*.rec"))
                          for _, payload in read_recordio_spec(rec.read_bytes())]
            assert listed == shards_ids and len(set(listed)) == len(listed)
        from conftest import mxnet_read

        read = mxnet_read("records", out)  # MXNet's indexed reader and training iterator take the appended ids
        assert sum(len(rows) for rows in read["shards"].values()) == 27
        assert all([r["label"] for r in rows] == read["iterated"][name] for name, rows in read["shards"].items())
    if to == "mds":  # each split's index lists its shards, kept and new, as they are
        for index in out.glob("*/index.json"):
            listed = {s["raw_data"]["basename"]: s["raw_data"] for s in json.loads(index.read_text())["shards"]}
            assert listed == {p.name: {"basename": p.name, "bytes": p.stat().st_size, "hashes": {
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}} for p in index.parent.glob("*.mds")}
    for shard in out.glob(f"**/*{ext}"):  # lost: the recorded placement writes the same shards again
        shard.unlink()
    placement = (out / "_sparkprep_placement.parquet").stat().st_ino
    third = export(spark, *flags)["incremental"]
    assert (out / "_sparkprep_placement.parquet").stat().st_ino == placement  # the same placement is left alone
    assert third["kept"] == 0 and {n: b for n, (_, b) in shard_files(out).items()} == {
        n: b for n, (_, b) in after.items()}
