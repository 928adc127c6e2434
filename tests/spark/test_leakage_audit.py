"""The near-duplicate audit on real photos: recall and precision on a planted set, exact pair counts per
split pair, merge, --fail-on-leakage, clusters in Spark, and the report job on a table without hashes."""

import itertools
import json
import os

import pytest

from sparkprep.audit.bands import DEFAULT_THRESHOLD
from sparkprep.audit.rule import CANDIDATE_BITS
from sparkprep.audit.spark.rows import phash_version
from sparkprep.audit.spark.search import _propagated_components, near_duplicate_audit, near_search, row_pairs
from sparkprep.errors import LeakageFound
from sparkprep.images.phash import hamming
from sparkprep.pipeline.flags import pipeline_config
from sparkprep.pipeline.spark.run import run_pipeline
from sparkprep.preprocess.flags import preprocess_config
from sparkprep.preprocess.spark import run_preprocess
from sparkprep.report.flags import report_config
from sparkprep.report.spark import run_report
from sparkprep.spark.tables import read_table
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory, make_planted):
    root = tmp_path_factory.mktemp("planted") / "photos"
    make_planted.write_planted(str(root))
    return root


@pytest.fixture(scope="module")
def planted_split(spark, planted_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("planted-split") / "splits"
    report = run_split(spark, split_config(["--input", str(planted_dir), "--output", str(out), "--ratios", "0.5,0.5",
                                            "--seed", "7"]))
    return out, report


@pytest.fixture(scope="module")
def planted_pipeline(spark, planted_dir, tmp_path_factory):
    """The same photos through the pipeline's one pass: hashes from the transform's decode (phash-v2)."""
    out = tmp_path_factory.mktemp("planted-pipeline") / "out"
    run_pipeline(spark, pipeline_config(["--input", str(planted_dir), "--output", str(out), "--ratios", "0.5,0.5",
                                         "--seed", "7", "--size", "224"]))
    return out / "splits"


def relative(uri):
    return uri.rsplit("/photos/", 1)[1]


@pytest.mark.parametrize("job", ["split", "pipeline"])
def test_recall_and_precision_on_the_planted_set_at_the_default_threshold(spark, job, request, make_planted):
    out = request.getfixturevalue("planted_split")[0] if job == "split" else request.getfixturevalue("planted_pipeline")
    table = read_table(spark, str(out))
    assert phash_version(table) == ("phash-v1" if job == "split" else "phash-v2")
    found = {tuple(sorted((relative(r["a_where"]), relative(r["b_where"]))))
             for r in row_pairs(near_search(table, DEFAULT_THRESHOLD, 500)).select("a_where", "b_where").collect()}
    paths = [relative(r["path"]) for r in table.select("path").collect()]
    truth = make_planted.true_pairs(paths)
    # the planted positives: every copy with its original, crops of at most 10% of the area, centred
    positives = {p for p in truth if any(x.endswith("__original.jpg") for x in p)
                 and not any(v in x for x in p for v in ("__crop20", "__crop10corner"))}
    assert len(positives) == 20 * 8
    recall = len(found & positives) / len(positives)
    precision = len(found & truth) / len(found)
    assert recall >= 0.95, recall
    assert precision >= 0.95, precision


def test_pair_counts_per_split_pair_equal_a_brute_force_count(spark, planted_split):
    out, report = planted_split
    rows = read_table(spark, str(out)).select("split", "phash").collect()
    expected = {}
    for a, b in itertools.combinations(rows, 2):
        if hamming(a["phash"], b["phash"]) <= DEFAULT_THRESHOLD:
            name = "|".join(sorted((a["split"], b["split"])))
            expected[name] = expected.get(name, 0) + 1
    near = report["near_duplicates"]
    assert {k: v for k, v in near["pairs_by_split_pair"].items() if v} == expected
    assert near["pairs_across_splits"] == expected.get("test|train", 0) > 0
    assert near["guaranteed_bits"] == DEFAULT_THRESHOLD
    # distinct photos: the calibrated threshold is the measured default, with room to spare
    assert near["calibration"]["how"] == "calibrated" and near["calibration"]["threshold"] == DEFAULT_THRESHOLD
    assert near["calibration"]["expected_chance_pairs"]["8"] < near["calibration"]["allowed_chance_pairs"]
    assert len(near["examples"]) > 0 and all(e["a"]["split"] != e["b"]["split"] for e in near["examples"])
    page = (out / "_report.html").read_text()
    assert "near pairs across splits (leakage)" in page and page.count("<img") > 20


def test_merge_leaves_no_near_pair_across_splits_and_passes_the_leakage_gate(spark, planted_dir, tmp_path):
    out = tmp_path / "merged"
    cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
    report = run_split(spark, split_config(["--input", str(planted_dir), "--output", str(out), "--ratios", "0.5,0.5",
                                            "--seed", "7", "--near-duplicates", "merge", "--fail-on-leakage"]))
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == cached  # merge's rows are freed once written
    near = report["near_duplicates"]
    assert near["pairs_across_splits"] == 0 and near["pairs_within_splits"] > 0
    assert near["merge"]["pairs_across_splits_before"] > 0 and near["merge"]["rows_moved"] > 0
    table = read_table(spark, str(out))
    rows = table.select("split", "phash").collect()  # brute force over every pair of the written table
    assert not [(a, b) for a, b in itertools.combinations(rows, 2)
                if a["split"] != b["split"] and hamming(a["phash"], b["phash"]) <= DEFAULT_THRESHOLD]
    assert json.loads(table.schema["key"].metadata["sparkprep.split"])["near_duplicates"] == "merge"


def test_a_fixed_threshold_on_look_alike_scans_merges_small_clusters_and_reports_the_chains(spark, make_sample,
                                                                                           tmp_path):
    tree = tmp_path / "scans"
    make_sample.make_tree(str(tree), per_class=50, with_bad=False, look_alike=True)
    plain = run_split(spark, split_config(["--input", str(tree), "--output", str(tmp_path / "plain"),
                                           "--near-threshold", "8", "--phash", "on"]))
    assert plain["near_duplicates"]["clusters"]["largest"] > 20  # chains of look-alike scans
    calibration = plain["near_duplicates"]["calibration"]
    assert calibration["how"] == "fixed by --near-threshold" and calibration["expected_chance_pairs"]["8"] > 1
    report = run_split(spark, split_config(["--input", str(tree), "--output", str(tmp_path / "merged"),
                                            "--near-threshold", "8", "--near-duplicates", "merge"]))
    merge = report["near_duplicates"]["merge"]
    assert merge["max_cluster_rows"] == 20 and 0 < merge["largest_merged"] <= 20
    assert merge["not_merged"]["clusters"] >= 1 and merge["not_merged"]["rows"] > 20
    assert merge["not_merged"]["examples"][0]["rows"] == plain["near_duplicates"]["clusters"]["largest"]
    assert len(merge["not_merged"]["examples"][0]["examples"]) == 3
    page = (tmp_path / "merged" / "_report.html").read_text()
    assert "expected chance pairs" in page and "random pairs" in page


def test_fail_on_leakage_raises_after_writing_on_a_leak(spark, planted_dir, tmp_path):
    """(A clean set passes the gate: test_merge_leaves_no_near_pair_across_splits_and_passes_the_leakage_gate.)"""
    out = tmp_path / "leaky"
    with pytest.raises(LeakageFound, match="near-duplicate pairs cross splits"):
        run_split(spark, split_config(["--input", str(planted_dir), "--output", str(out), "--ratios", "0.5,0.5",
                                       "--seed", "7", "--fail-on-leakage"]))
    assert (out / "_run_report.json").exists() and (out / "_report.html").exists()  # written, then failed


def test_clusters_by_label_propagation_equal_union_find(spark, planted_split):
    out, _ = planted_split
    table = read_table(spark, str(out))
    on_driver = near_duplicate_audit(table, DEFAULT_THRESHOLD, 500, centre_keys=100).key_clusters
    in_spark = near_duplicate_audit(table, DEFAULT_THRESHOLD, 500, collect_edges=0, centre_keys=100).key_clusters
    assert sorted(map(tuple, on_driver.collect())) == sorted(map(tuple, in_spark.collect()))
    chain = spark.createDataFrame([("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("x", "y")], "a string, b string")
    assert dict(map(tuple, _propagated_components(chain).collect())) == {
        "a": "a", "b": "a", "c": "a", "d": "a", "e": "a", "x": "x", "y": "x"}


def _chain_table(spark, links=8):
    """A photo with two copies, and a chain of `links` + 1 look-alike images, each 6 bits from the
    next (distinct bits), so 12 or more bits from all others: one component, no copies of one image."""
    rows = [(f"p{i}", "train" if i % 2 else "test", "a", f"/d/p{i}.jpg", "ok", 0x5A5A_0000_FFFF_1234 ^ flip)
            for i, flip in enumerate((0, 0b111, 0b111 << 20))]
    value = 0x0123_4567_89AB_CDEF
    for i in range(links + 1):
        rows.append((f"c{i}", "train" if i % 2 else "test", "a", f"/d/c{i}.jpg", "ok", value))
        value ^= 0b111111 << (6 * i)
    return spark.createDataFrame(rows, "key string, split string, label string, path string, status string, phash long")


def test_merge_takes_a_photo_and_its_copies_but_not_a_chain_of_look_alike_images(spark, tmp_path):
    """A cluster is merged only when one member is within 2 links of every other (sparkprep.audit.bands)."""
    from sparkprep.split.spark import merged_near_duplicates

    table = _chain_table(spark)
    for kwargs in ({}, {"local_rows": 0}, {"local_rows": 0, "collect_edges": 0}):  # driver, Spark, propagation
        found = near_duplicate_audit(table, 8, 500, centre_keys=100, **kwargs)
        centres = {k: centre for k, _, centre in found.key_clusters.collect()}
        assert centres == {"p0": "p0", "p1": "p0", "p2": "p0", **{f"c{i}": None for i in range(9)}}, kwargs
    (tmp_path / "in").mkdir()
    cfg = split_config(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--near-duplicates", "merge",
                        "--near-threshold", "8",
                        "--ratios", "0.5,0.5"])
    merged, stats, persisted = merged_near_duplicates(table.selectExpr("*", "key AS sha256",
                                                                       "CAST(NULL AS string) AS error"), cfg)
    keys = dict(map(tuple, merged.select("path", "key").collect()))
    persisted.unpersist()
    assert {keys[f"/d/p{i}.jpg"] for i in range(3)} == {"p0"}
    assert all(keys[f"/d/c{i}.jpg"] == f"c{i}" for i in range(9))  # the chain keeps its own keys
    assert stats["clusters"] == 1 and stats["largest_merged"] == 3
    assert stats["without_centre"]["clusters"] == 1 and stats["without_centre"]["rows"] == 9
    assert stats["without_centre"]["examples"][0]["examples"] == ["/d/c0.jpg", "/d/c1.jpg", "/d/c2.jpg"]


def test_crowded_hashes_are_reported_not_joined(spark, tmp_path, make_sample):
    from PIL import Image

    root = tmp_path / "flat" / "blank"
    os.makedirs(root)
    for i in range(6):  # six flat images: one hash, shared by more rows than the cap
        Image.new("L", (40, 40), 200 + i).save(root / f"{i}.png")
    out = tmp_path / "flat-split"
    report = run_split(spark, split_config(["--input", str(tmp_path / "flat"), "--output", str(out),
                                            "--near-bucket-cap", "3"]))
    near = report["near_duplicates"]
    assert near["flat_hashes"]["count"] == 1 and near["flat_hashes"]["rows"] == 6
    assert near["pairs_within_splits"] + near["pairs_across_splits"] == 0


def test_the_report_job_hashes_a_processed_table_and_writes_one_page(spark, planted_split, tmp_path):
    out, _ = planted_split
    processed = tmp_path / "processed"
    run_preprocess(spark, preprocess_config(["--input", str(out), "--output", str(processed), "--size", "64",
                                             "--encode", "raw"]))
    page_dir = tmp_path / "page"
    report = run_report(spark, report_config(["--input", str(processed), "--output", str(page_dir)]))
    assert sorted(n for n in os.listdir(page_dir) if not n.endswith(".crc")) == [
        "_run_report.json", "_sparkprep.json", "report.html"]
    near = report["near_duplicates"]
    assert near["hashed_rows"] == report["rows"] and near["pairs_across_splits"] > 0
    assert report["normalization"] and "Normalization" in (page_dir / "report.html").read_text()
    again = run_report(spark, report_config(["--input", str(processed), "--output", str(page_dir)]))
    assert again["rows"] == report["rows"]  # its own directory is replaced


def test_without_hashes_the_report_claims_nothing_about_near_duplicates(spark, planted_dir, tmp_path):
    report = run_split(spark, split_config(["--input", str(planted_dir), "--output", str(tmp_path / "s"),
                                            "--phash", "off"]))
    assert "near_duplicates" not in report
    assert "No near-duplicate pair crosses" not in (tmp_path / "s" / "_report.html").read_text()


def _near_table(spark, seed):
    """Rows in three splits, some without labels: families of hashes a few bits apart, exact
    copies, one flat hash over the cap, and unrelated hashes."""
    import random

    rng = random.Random(seed)
    rows, n = [], 0

    def add(phash, status="ok"):
        nonlocal n
        signed = phash - (1 << 64) if phash >= 1 << 63 else phash
        rows.append((f"k{n % 37 if rng.random() < 0.3 else n}", rng.choice(["train", "val", "test"]),
                     rng.choice(["a", "b", None]), f"/d/{n:04d}.jpg", status, signed))
        n += 1

    for _ in range(25):  # families
        base = rng.getrandbits(64)
        for _ in range(rng.randint(1, 6)):
            add(base ^ sum(1 << b for b in rng.sample(range(64), rng.randint(0, 9))))
    for _ in range(8):  # a flat hash shared by more rows than the cap
        add(0x0F0F0F0F0F0F0F0F)
    for _ in range(60):
        add(rng.getrandbits(64))
    add(rng.getrandbits(64), status="corrupt")
    return spark.createDataFrame(rows, "key string, split string, label string, path string, status string, phash long")


@pytest.mark.parametrize("threshold,cap", [(None, 500), (8, 5), (12, 4)])
def test_the_audit_on_the_driver_equals_the_audit_in_spark(spark, planted_split, threshold, cap):
    """The small-table path (sparkprep.audit.local) gives the Spark path's report, field for field, and its clusters;
    so does it from the rows collected with the table's counted columns (what a table write's check uses)."""
    from sparkprep.audit.spark.rows import audit_columns, rows_of_small
    from sparkprep.spark.table_stats import small_columns

    out, _ = planted_split
    tables = [_near_table(spark, seed=cap)] + ([read_table(spark, str(out))] if threshold is None else [])
    for table in tables:  # the planted photos once (calibrated to 8 bits: many cross-split pairs)
        on_driver = near_duplicate_audit(table, threshold, cap)
        cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
        in_spark = near_duplicate_audit(table, threshold, cap, local_rows=0)
        # the search's frames are freed (and with them any equal frames other tests' searches left cached)
        assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) <= cached
        collected = rows_of_small(small_columns(table, extra=audit_columns(table)))
        assert near_duplicate_audit(table, threshold, cap, collected=collected).stats == in_spark.stats
        assert on_driver.stats["clusters"]["method"] == in_spark.stats["clusters"]["method"] == "union-find on the driver"
        assert on_driver.stats == in_spark.stats
        assert sorted(map(tuple, on_driver.key_clusters.collect())) == sorted(map(tuple, in_spark.key_clusters.collect()))
        assert in_spark.stats["pairs_across_splits"] > 0 and in_spark.stats["clusters"]["count"] > 0
        if table is tables[0]:  # the random table: its flat hash (8 rows) and crowded band keys pass a small cap
            flat, capped = in_spark.stats["flat_hashes"]["count"], in_spark.stats["capped_band_keys"]["count"]
            assert (flat, capped > 0) == ((1, True) if cap < 8 else (0, False))


def test_the_crop_search_runs_on_the_driver_up_to_its_limit_and_says_so_beyond(spark, planted_split, monkeypatch):
    """--near-signature crop-robust: a table past the driver's pHash limit is collected with its windows (computed
    from its bytes) and audited on the driver, as a small one is; past CROP_MAX_ROWS, by pHash alone in Spark."""
    from sparkprep.audit.spark import search

    out, _ = planted_split
    table = read_table(spark, str(out))
    plain = near_duplicate_audit(table, None, 500, local_rows=0).stats
    cropped = near_duplicate_audit(table, None, 500, local_rows=0, crops=True).stats
    assert cropped == near_duplicate_audit(table, None, 500, crops=True).stats
    assert cropped["crops"]["searched"] and cropped["crops"]["hash_pairs"] > 0  # the planted corner crops
    assert cropped["hash_pairs"] == plain["hash_pairs"] + cropped["crops"]["hash_pairs"]
    assert any("crop" in e for e in cropped["examples"])
    monkeypatch.setattr(search, "CROP_MAX_ROWS", 10)
    beyond = near_duplicate_audit(table, None, 500, local_rows=0, crops=True).stats
    assert not beyond.pop("crops")["searched"] and beyond == plain


@pytest.fixture(scope="module")
def scans_split(spark, make_sample, tmp_path_factory):
    """The demo's scans (one modality per class, five slices per patient), with the generator's planted copies."""
    tree = tmp_path_factory.mktemp("demo-scans") / "scans"
    make_sample.make_tree(str(tree), per_class=100, with_bad=True)
    out = tmp_path_factory.mktemp("demo-scans-split") / "splits"
    report = run_split(spark, split_config(["--input", str(tree), "--output", str(out), "--seed", "7"]))
    return out, report, make_sample.planted_pairs(str(tree))


def test_on_look_alike_scans_the_angle_keys_every_planted_copy_with_its_original_and_nothing_else(spark, scans_split):
    out, report, planted = scans_split
    near = report["near_duplicates"]
    assert near["calibration"]["threshold"] == 0  # the 64-bit hash alone cannot tell these scans apart
    assert near["angle"]["used"] and 0.5 <= near["angle"]["threshold_degrees"] <= 6
    table = read_table(spark, str(out))
    # the driver's audit equals the one whose rule is calibrated in Spark (the angle's search runs on the driver)
    on_driver, in_spark = near_duplicate_audit(table, None, 500), near_duplicate_audit(table, None, 500, local_rows=0)
    assert on_driver.stats == in_spark.stats == {k: v for k, v in near.items() if k != "seconds"}
    # its cluster edges are on the driver already, so no edge limit sends them to Spark's label propagation
    assert near_duplicate_audit(table, None, 500, local_rows=0, collect_edges=0).stats == on_driver.stats
    assert near_search(table, None, 500).stats["angle"] is None  # the banding search keeps to the hashes' rule
    key = {relative_to(r["path"]): r["key"] for r in table.where("status = 'ok'").select("path", "key").collect()}
    cluster = {r["key"]: r["cluster"] for r in in_spark.key_clusters.collect()}
    truth = {tuple(sorted(p)) for p in planted}
    assert len(truth) == 15 and all(cluster.get(key[a]) is not None and cluster.get(key[a]) == cluster.get(key[b])
                                    for a, b in truth)  # every planted copy (re-encoded, resized, brightened)
    # and no chance pair (the bound: 1 per 10,000 rows): the planted pairs and the generator's 3 exact duplicates
    assert in_spark.stats["pairs_within_splits"] + in_spark.stats["pairs_across_splits"] == 15 + 3
    assert all("angle" in e for e in in_spark.stats["examples"])
    page = (out / "_report.html").read_text()
    assert "The angle between DCT directions" in page and "Angles of the random pairs" in page


def test_a_table_written_before_the_directions_falls_back_to_phash256(spark, scans_split):
    out, _, planted = scans_split
    table = read_table(spark, str(out)).drop("dct_direction")
    near = near_duplicate_audit(table, None, 500).stats
    assert near["second_hash"]["used"] and near["threshold"] == CANDIDATE_BITS
    assert 8 <= near["second_hash"]["threshold"] <= 16
    assert not near["angle"]["used"] and "no dct_direction column" in near["angle"]["rule"]
    found = near_search(table, None, 500)
    assert found.confirmed
    pairs = {tuple(sorted((relative_to(r["a_where"]), relative_to(r["b_where"])))) for r in row_pairs(found).collect()}
    truth = {tuple(sorted(p)) for p in planted}
    assert len(truth) == 15 and truth <= pairs
    exact = {p for p in pairs if any("p_dup_" in name for name in p)}  # the generator's exact duplicates
    assert len(exact) == 3 and not pairs - truth - exact
    assert near_duplicate_audit(table, None, 500, local_rows=0).stats == near
    assert all("distance256" in e for e in near["examples"])


def test_the_report_job_gives_a_processed_table_of_scans_all_three_signatures_and_the_angle(spark, scans_split,
                                                                                             tmp_path):
    """A processed table holds no hashes: the report job computes phash, phash256 and dct_direction from each
    row's image, in one decode, so look-alike scans are audited by the angle there too."""
    from sparkprep.images.phash import phashes_of_bytes
    from sparkprep.spark.visuals import with_phash

    out, _, planted = scans_split
    processed = tmp_path / "processed"
    run_preprocess(spark, preprocess_config(["--input", str(out), "--output", str(processed), "--size", "64"]))
    table = read_table(spark, str(processed))
    row = with_phash(table).where("status = 'ok'").select("image", "phash", "phash256", "dct_direction").first()
    expected = phashes_of_bytes(bytes(row["image"]))
    assert (row["phash"], row["phash256"], row["dct_direction"]) == (expected[0], expected[1], expected[2].tolist())
    near = run_report(spark, report_config(["--input", str(processed), "--output", str(tmp_path / "page")]))[
        "near_duplicates"]
    assert near["calibration"]["threshold"] == 0 and near["angle"]["used"]
    assert 15 <= near["pairs_within_splits"] + near["pairs_across_splits"] <= 15 + 3 + 1  # the copies, the 3 exact


def relative_to(uri):
    return uri.rsplit("/scans/", 1)[1]
