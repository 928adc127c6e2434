"""A 10M-row manifest through `split --plan` (a real spark-submit) under a 512 MB driver heap,
smaller than the uris' characters alone: it plans every row, and the driver's peak memory is the
same as at 1M rows. Nothing of O(objects) reaches the driver."""

from conftest import load_script


def test_a_10m_row_manifest_keeps_the_driver_flat(tmp_path_factory):
    bench = load_script("bench_manifest_memory")
    base = tmp_path_factory.mktemp("manifests")
    found = {}
    for rows in (1_000_000, 10_000_000):
        manifest = str(base / f"uris-{rows}.parquet")
        chars = bench.make_manifest(manifest, rows)
        found[rows] = bench.measure(manifest, str(base / "out"))
        assert found[rows]["files"] == rows, found[rows]["output"][-3000:]
        assert "nothing is read or written" not in found[rows]["output"]  # the plan, not the help
    assert chars > 512 * 2**20  # the 10M uris could not even be held by the driver's heap
    small, large = found[1_000_000], found[10_000_000]
    assert large["driver_python"] < small["driver_python"] + 30, (small, large)
    # The JVM's resident memory grows toward its heap limit as the scan makes garbage (measured: 512 MB
    # at 1M rows, 802 MB at 10M), but it is bounded by the 512 MB heap plus the JVM's own off-heap
    # memory: the 10M uris alone would need more than that heap.
    assert large["driver_jvm"] < 1100, (small, large)
    assert not (base / "out").exists()  # --plan wrote nothing
