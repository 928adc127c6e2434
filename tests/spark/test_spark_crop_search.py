"""The crop search in Spark equals the pure reference (sparkprep.audit.crops.crop_matches), crowded keys included."""

import random

import numpy as np

from sparkprep.audit.crops import crop_layout, crop_matches
from sparkprep.audit.spark.crops import crop_search
from sparkprep.images.phash import WINDOW_COUNT


def _images(spark, wholes, windows):
    return spark.createDataFrame([(f"k{i:04d}", int(w), [int(x) for x in ws]) for i, (w, ws) in
                                  enumerate(zip(wholes, windows))], "id string, whole bigint, windows array<bigint>")


def test_the_spark_crop_search_finds_what_the_reference_finds(spark):
    rng = random.Random(29)
    n, threshold = 200, 8
    wholes = [rng.getrandbits(64) - (1 << 63) for _ in range(n)]
    windows = [[rng.getrandbits(64) - (1 << 63) for _ in range(WINDOW_COUNT)] for _ in range(n)]
    for _ in range(40):  # crops within 0..threshold bits of one window of their original
        copy, original = rng.sample(range(n), 2)
        value = wholes[copy] & (2 ** 64 - 1)
        for bit in rng.sample(range(64), rng.randint(0, threshold)):
            value ^= 1 << bit
        windows[original][rng.randrange(WINDOW_COUNT)] = value - (1 << 64) if value >= 1 << 63 else value
    for i in range(20):  # and 20 flat images, whose every window is one hash: a crowded key value at a cap of 10
        wholes[i], windows[i] = 0, [0] * WINDOW_COUNT
    band = crop_layout(threshold, n, 10)
    reference = crop_matches(np.array(wholes, np.int64), np.array(windows, np.int64), band, threshold, cap=10)
    found = crop_search(_images(spark, wholes, windows), band, threshold, cap=10)
    got = sorted((r["whole"], r["other"], r["window"], r["distance"]) for r in found.matches.collect())
    found.release()
    columns = (reference.whole, reference.other, reference.window, reference.distance)
    expected = sorted((f"k{i:04d}", f"k{j:04d}", w, d) for i, j, w, d in zip(*(a.tolist() for a in columns)))
    assert got == expected and len(got) >= 30  # the 40 planted, less those the flat images overwrote
    assert found.crowded_keys == reference.crowded_keys > 0
