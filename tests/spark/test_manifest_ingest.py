"""A catalog from an S3 Inventory manifest, the workers fetching from moto's S3."""

import gzip
import json

import pyarrow.parquet as pq

from sparkprep.ingest.fetch import FetchSettings
from sparkprep.ingest.flags import ingest_config
from sparkprep.ingest.spark.manifests import manifest_listing
from sparkprep.ingest.spark.sources import fetched_catalog


def test_an_inventory_lists_and_the_workers_fetch_every_object(spark, s3_endpoint, make_sample, monkeypatch, tmp_path):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)  # the driver reads manifest.json through pyarrow.fs
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for bucket in ("photos", "inventory"):
        client.create_bucket(Bucket=bucket)
    lines = []
    for i in range(30):
        key = f"{'cat' if i % 2 else 'dog'}/img {i}.jpg"
        data = make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i))
        client.put_object(Bucket="photos", Key=key, Body=data)
        lines.append(f'"photos","{key.replace(" ", "+").replace("/", "%2F")}","{len(data)}"')
    lines.append('"photos","dog/missing.jpg","10"')  # listed, but gone: a row with a reason
    inventory_file = gzip.compress("\n".join(lines).encode())
    client.put_object(Bucket="inventory", Key="photos/cfg/data/a.csv.gz", Body=inventory_file)
    client.put_object(Bucket="inventory", Key="photos/cfg/2026-11-01T00-00Z/manifest.json", Body=json.dumps({
        "sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::inventory", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size", "files": [{"key": "photos/cfg/data/a.csv.gz", "size": len(inventory_file)}]}).encode())

    fetch = FetchSettings(concurrency=4, endpoint=s3_endpoint)
    listing, root = manifest_listing(spark, "s3://inventory/photos/cfg/2026-11-01T00-00Z/manifest.json", fetch)
    assert root == "s3://photos" and listing.count() == 31
    (tmp_path / "in").mkdir()
    cfg = ingest_config(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    rows = fetched_catalog(spark, listing, root, cfg, fetch).select("rel_path", "label", "status", "error",
                                                                    "format").collect()
    by_path = {r["rel_path"]: r for r in rows}
    assert len(rows) == 31 and by_path["cat/img 1.jpg"]["status"] == "ok" and by_path["cat/img 1.jpg"]["label"] == "cat"
    assert by_path["dog/missing.jpg"]["status"] == "unreadable" and "404 NoSuchKey" in by_path["dog/missing.jpg"]["error"]
    assert sum(r["status"] == "ok" and r["format"] == "JPEG" for r in rows) == 30


def write_images(make_sample, root, indices, folder=lambda i: "cat" if i % 2 else "dog"):
    """Small JPEGs at root/<folder(i)>/<i>.jpg; their paths."""
    paths = []
    for i in indices:
        paths.append(root / folder(i) / f"{i}.jpg")
        make_sample.write(str(paths[-1]), make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i)))
    return paths


def test_a_parquet_table_of_uris_is_a_manifest(spark, tmp_path, make_sample):
    import pyarrow as pa

    paths = [str(p) for p in write_images(make_sample, tmp_path / "raw", range(4), folder=lambda i: "a")]
    pq.write_table(pa.table({"uri": paths}), str(tmp_path / "paths.parquet"))
    fetch = FetchSettings(concurrency=2)
    listing, _ = manifest_listing(spark, str(tmp_path / "paths.parquet"), fetch)
    cfg = ingest_config(["--input", str(tmp_path / "raw"), "--output", str(tmp_path / "out")])
    rows = fetched_catalog(spark, listing, "file:" + str(tmp_path / "raw"), cfg, fetch).collect()
    assert sorted(r["rel_path"] for r in rows) == [f"a/{i}.jpg" for i in range(4)]
    assert all(r["status"] == "ok" and r["size"] > 0 for r in rows)


def test_split_with_a_manifest_writes_a_reconciled_table(spark, tmp_path, make_sample):
    import pyarrow as pa

    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    paths = []

    def grow(count):
        for path in write_images(make_sample, tmp_path / "raw", range(len(paths), len(paths) + count)):
            paths.append((str(path), path.stat().st_size))
        table = paths + [(str(tmp_path / "raw" / "dog" / "notes.txt"), 3)]  # not an image: counted, skipped
        pq.write_table(pa.table({"uri": [p for p, _ in table], "size": [s for _, s in table],
                                 "etag": [etag(p) for p, _ in table]}), str(tmp_path / "paths.parquet"))
        return run_split(spark, split_config(["--manifest", str(tmp_path / "paths.parquet"), "--input",
                                              str(tmp_path / "raw"), "--output", str(tmp_path / "split"),
                                              "--phash", "off", "--incremental"]))

    report = grow(12)
    rec = report["reconciliation"]
    assert (rec["listed_files"], rec["skipped_extension"], rec["expected_rows"], rec["rows"]) == (13, 1, 12, 12)
    assert rec["reconciled"]
    rows = pq.read_table(str(tmp_path / "split"), columns=["label", "status"]).to_pylist()
    assert sorted(r["label"] for r in rows) == ["cat"] * 6 + ["dog"] * 6 and all(r["status"] == "ok" for r in rows)
    # the manifest grows by 2: unchanged rows are matched by uri, size and etag
    report = grow(2)
    assert (report["incremental"]["kept"], report["incremental"]["read"], report["rows"]) == (12, 2, 14)
    assert report["reconciliation"]["reconciled"] and report["incremental"]["unversioned"] == 0


def etag(path):
    """What a manifest would record for an object's version: here, the md5 of its bytes, as S3's ETag."""
    import hashlib
    import os

    return hashlib.md5(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


def png(size, colour):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_incremental_rereads_an_object_whose_manifest_row_has_no_version(spark, tmp_path, make_sample):
    """null == null is not "unchanged": a row without an etag is read again (it was kept, stale)."""
    import pyarrow as pa
    import pytest

    from sparkprep.errors import UsageError
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    raw = tmp_path / "raw"
    kept = [str(p) for p in write_images(make_sample, raw, range(3), folder=lambda i: "a")]
    changing = raw / "a" / "red.png"
    changing.write_bytes(png(8, "red"))
    uris = kept + [str(changing)]

    def run(etags, sizes=True):
        columns = {"uri": uris, "etag": etags}
        if sizes:
            columns["size"] = [os_size(u) for u in uris]
        pq.write_table(pa.table(columns), str(tmp_path / "paths.parquet"))
        return run_split(spark, split_config(["--manifest", str(tmp_path / "paths.parquet"), "--input", str(raw),
                                              "--output", str(tmp_path / "split"), "--phash", "off",
                                              "--incremental"]))

    run([etag(u) for u in kept] + [None])
    changing.write_bytes(png(16, "green"))  # same path, new bytes; the manifest says nothing of it
    report = run([etag(u) for u in kept] + [None])
    assert report["incremental"]["kept"] == 3 and report["incremental"]["read"] == 1
    assert report["incremental"]["unversioned"] == 1
    rows = {r["rel_path"]: r for r in pq.read_table(str(tmp_path / "split")).to_pylist()}
    assert rows["a/red.png"]["width"] == 16
    assert rows["a/red.png"]["sha256"] == __import__("hashlib").sha256(png(16, "green")).hexdigest()
    # a uri table without any version column cannot run incrementally: refused, naming the column
    pq.write_table(pa.table({"uri": uris, "size": [os_size(u) for u in uris]}), str(tmp_path / "paths.parquet"))
    with pytest.raises(UsageError, match="--incremental: the manifest .* has no etag or last_modified column"):
        run_split(spark, split_config(["--manifest", str(tmp_path / "paths.parquet"), "--input", str(raw),
                                       "--output", str(tmp_path / "split"), "--phash", "off", "--incremental"]))


def os_size(path):
    import os

    return os.path.getsize(path)


def write_inventory(client, make_sample, count, prefix, fields="Bucket, Key, Size, ETag"):
    """Objects 0..count-1 in bucket `photos`, and an S3 Inventory of them under inventory/<prefix>/."""
    import hashlib

    lines = []
    for i in range(count):
        key = f"{'cat' if i % 2 else 'dog'}/{i}.jpg"
        data = make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i))
        client.put_object(Bucket="photos", Key=key, Body=data)
        row = ["photos", key.replace("/", "%2F"), str(len(data)), hashlib.md5(data).hexdigest()]
        lines.append(",".join(f'"{v}"' for v in row[:len(fields.split(","))]))
    data_key = f"photos/cfg/{prefix}/data.csv.gz"
    body = gzip.compress("\n".join(lines).encode())
    client.put_object(Bucket="inventory", Key=data_key, Body=body)
    manifest = f"photos/cfg/{prefix}/manifest.json"
    client.put_object(Bucket="inventory", Key=manifest, Body=json.dumps({
        "sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::inventory", "fileFormat": "CSV",
        "fileSchema": fields, "files": [{"key": data_key, "size": len(body)}]}).encode())
    return f"s3://inventory/{manifest}"


def test_incremental_on_a_new_inventory_compares_the_listing_not_the_manifests_path(
        spark, s3_endpoint, make_sample, monkeypatch, tmp_path):
    """S3 Inventory writes every manifest.json under a new dated prefix: that alone is no reason
    to read everything again."""
    import boto3
    import pytest

    from sparkprep.errors import UsageError
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for bucket in ("photos", "inventory"):
        client.create_bucket(Bucket=bucket)

    def run(manifest):
        return run_split(spark, split_config(["--manifest", manifest, "--output", str(tmp_path / "split"),
                                              "--phash", "off", "--incremental", "--s3-endpoint", s3_endpoint]))

    assert run(write_inventory(client, make_sample, 8, "2026-11-01T00-00Z"))["incremental"]["read"] == 8
    report = run(write_inventory(client, make_sample, 10, "2026-11-02T00-00Z"))
    assert (report["incremental"]["kept"], report["incremental"]["read"]) == (8, 2)
    assert "full_read" not in report["incremental"] and report["rows"] == 10
    # an inventory configured without ETag and LastModifiedDate: refused, naming the fields
    without = write_inventory(client, make_sample, 10, "2026-11-03T00-00Z", fields="Bucket, Key, Size")
    with pytest.raises(UsageError, match="lists neither ETag nor LastModifiedDate"):
        run(without)


def test_s3_input_without_s3a_is_read_by_the_workers(spark, s3_endpoint, make_sample, monkeypatch, tmp_path):
    """No s3a jars here: the driver lists s3:// with pyarrow.fs and the workers GET the objects."""
    import boto3

    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="raw-images")
    for i in range(6):
        client.put_object(Bucket="raw-images", Key=f"set/{'cat' if i % 2 else 'dog'}/{i}.jpg",
                          Body=make_sample.jpeg_bytes(make_sample.synthetic_scan(i, i)))
    client.put_object(Bucket="raw-images", Key="set/dog/broken.jpg", Body=b"\xff\xd8 not a jpeg")
    report = run_split(spark, split_config(["--input", "s3://raw-images/set", "--output", str(tmp_path / "out"),
                                            "--phash", "off"]))
    assert report["reconciliation"]["reconciled"] and report["rows"] == 7
    assert report["reconciliation"]["read_by_spark"] == 0
    rows = pq.read_table(str(tmp_path / "out"), columns=["label", "status", "path"]).to_pylist()
    assert sorted((r["label"], r["status"]) for r in rows) == [("cat", "ok")] * 3 + [("dog", "invalid")] + \
        [("dog", "ok")] * 3
    assert all(r["path"].startswith("s3://raw-images/set/") for r in rows)


def test_the_pipeline_reads_a_manifest(spark, tmp_path, make_sample):
    """The pipeline with --manifest: the workers fetch and probe, then a second pass transforms."""
    import pyarrow as pa

    from sparkprep.pipeline.flags import pipeline_config
    from sparkprep.pipeline.spark.run import run_pipeline

    paths = [str(p) for p in write_images(make_sample, tmp_path / "raw", range(6))]
    pq.write_table(pa.table({"uri": paths}), str(tmp_path / "paths.parquet"))
    report = run_pipeline(spark, pipeline_config(["--manifest", str(tmp_path / "paths.parquet"), "--input",
                                                  str(tmp_path / "raw"), "--output", str(tmp_path / "out"),
                                                  "--size", "16", "--phash", "off"]))
    assert "a second Python pass to transform (--manifest)" in report["passes"]
    assert report["stages"]["splits"]["reconciliation"]["reconciled"]
    images = pq.read_table(str(tmp_path / "out" / "processed"), columns=["label", "width"]).to_pylist()
    assert sorted(r["label"] for r in images) == ["cat"] * 3 + ["dog"] * 3 and {r["width"] for r in images} == {16}


def test_plan_counts_and_sizes_a_folder_and_writes_nothing(spark, tmp_path, make_sample):
    from sparkprep.runlog import summary_table
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    sizes = [p.stat().st_size for p in write_images(make_sample, tmp_path / "raw", range(5), folder=lambda i: "a")]
    (tmp_path / "raw" / "a" / "notes.txt").write_text("skipped")
    report = run_split(spark, split_config(["--input", str(tmp_path / "raw"), "--output", str(tmp_path / "out"),
                                            "--plan", "--plan-nodes", "3", "--plan-instance", "c5.4xlarge"]))
    plan = report["plan"]
    assert (plan["files"], plan["bytes"], plan["listed"], plan["nodes"], plan["vcpus"]) == (5, sum(sizes), 6, 3, 48)
    assert plan["limits"] == [] and plan["bound_by"] == "CPU" and plan["get_per_second"] == 0  # local, small
    assert summary_table(report).startswith("== plan: split of 5 files")
    assert not (tmp_path / "out").exists()
    # the same files through a manifest of local paths: no S3 GETs planned, no request-rate limit
    import pyarrow as pa

    pq.write_table(pa.table({"uri": [str(p) for p in sorted((tmp_path / "raw").rglob("*.*"))]}),
                   str(tmp_path / "paths.parquet"))
    plan = run_split(spark, split_config(["--manifest", str(tmp_path / "paths.parquet"), "--output",
                                          str(tmp_path / "out"), "--plan", "--plan-nodes", "25"]))["plan"]
    assert (plan["files"], plan["get_per_second"], plan["limits"]) == (5, 0, [])
    assert not (tmp_path / "out").exists()


def test_manifest_objects_outside_the_input_are_counted_and_reported_not_a_failed_task(spark, tmp_path, make_sample):
    import pyarrow as pa

    from sparkprep.runlog import summary_table
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    inside = [str(p) for p in write_images(make_sample, tmp_path / "raw", range(4))]
    outside = [str(p) for p in write_images(make_sample, tmp_path / "elsewhere", range(4, 6))]
    pq.write_table(pa.table({"uri": inside + outside}), str(tmp_path / "paths.parquet"))
    report = run_split(spark, split_config(["--manifest", str(tmp_path / "paths.parquet"), "--input",
                                            str(tmp_path / "raw"), "--output", str(tmp_path / "split"),
                                            "--phash", "off"]))
    rec = report["reconciliation"]
    assert (rec["listed_files"], rec["outside_input"], rec["expected_rows"], rec["rows"]) == (6, 2, 4, 4)
    assert rec["reconciled"] and rec["outside_input_examples"] == sorted(outside)
    assert "2 outside --input" in summary_table(report)


def test_an_s3a_root_takes_s3_uris_of_the_same_bucket():
    from sparkprep.ingest.paths import relative_path

    assert relative_path("s3://photos/raw/cat/1.jpg", "s3a://photos/raw") == "cat/1.jpg"
    assert relative_path("s3a://photos/raw/cat/1.jpg", "s3://photos/raw/") == "cat/1.jpg"
