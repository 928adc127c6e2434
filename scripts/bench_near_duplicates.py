"""The near-duplicate audit's figures (docs/near-duplicates.md): hash cost, recall/precision, search time.

    python scripts/bench_near_duplicates.py [--photos bench/photos1500] [--sizes 50000,100000]
    python scripts/bench_near_duplicates.py --calibration 5000,50000
    python scripts/bench_near_duplicates.py --hash-cost [--photos DIR]   # phash-v1 against phash-v2

1. pHash cost per image next to the probe it joins (header parse + end check), on real photos
   and on the 64 px sample images, in one process: probe, probe + phash, and imagehash's phash
   of a full decode for reference.
2. Recall and precision per threshold, and recall per kind of copy, on the planted set
   (scripts/make_planted.py), from exact pairwise distances.
3. With --calibration 5000,50000 instead: the calibrated rule (sparkprep.audit.rule.near_rule:
   the 64-bit threshold, and the angle between DCT directions where the 64-bit hash cannot tell
   the data apart) on the planted photos and on both scan generators with 1% planted copies: the
   rule chosen, the chance pairs it lets through (the angle's from its search, checked against
   brute force), the planted recall.
7. With --long-hash 5000,50000 instead: phash256 (imagehash's hash_size=16: the top-left 16x16
   DCT block of a 64x64 greyscale) and the angle between the DCT directions (that block without
   its DC term) against
   the 64-bit pHash, by brute force, on the planted photos and on both scan generators with 1%
   planted copies: recall and chance pairs per threshold.
6. With --audit-time 5000,50000 instead: the audit's own seconds (near_duplicates.seconds in the
   run report) in `spark-submit jobs/split.py --near-duplicates merge` on scans of both generators
   with planted copies at these sizes, its time per row, what merge did with the copies, and its
   share of `spark-submit jobs/pipeline.py` on the look-alike photos (--photos), against the
   issue's goals.
5. With --hash-cost instead: per photo, in one process, the pipeline's transform (224 px crop,
   JPEG q90) alone, with phash-v2 from its decode, and with phash-v1's own decode beside it;
   the bits between the two versions; and the planted set's recall and precision with phash-v2.
4. The Spark search (banding join, pair counts, clusters) on synthetic hashes from spark.range:
   uniform 64-bit values (xxhash64 of the id) with 1% near copies (1..8 bits flipped). Two sizes
   side by side; the marginal time between them cancels the JVM start-up and the fixed per-job cost.
"""

from __future__ import annotations

import argparse
import collections
import glob
import io
import itertools
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def best_ms(datas, fn, repeat):
    """The fastest of `repeat` passes of fn over every item, in ms per item."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        for d in datas:
            fn(d)
        spent = (time.perf_counter() - start) / len(datas) * 1e3
        best = spent if best is None else min(best, spent)
    return best


def per_image_cost(paths, repeat=3):
    from PIL import Image

    from sparkprep.images.phash import phash_of_bytes
    from sparkprep.images.probe import probe_image

    datas = [open(p, "rb").read() for p in paths]
    datas = [d for d in datas if probe_image(d, full=True).status == "ok"]  # the sample's bad files are not hashed

    def timed(fn):
        return best_ms(datas, fn, repeat)

    probe = timed(probe_image)
    both = timed(lambda d: (probe_image(d), phash_of_bytes(d)))
    try:
        import imagehash
        reference = timed(lambda d: imagehash.phash(Image.open(io.BytesIO(d))))
    except ImportError:
        reference = None
    return probe, both, reference


def pipeline_hash(data):
    """phash-v2 as the pipeline's one pass computes it with the default recipe (224 px)."""
    from sparkprep.images.phash import phash_of_decode
    from sparkprep.preprocess.transform import TransformSpec, decode_for

    return phash_of_decode(decode_for(data, TransformSpec()), data)


def hash_cost(paths, repeat=3):
    """ms per photo: the transform, + phash-v2 from its decode, + phash-v1's own decode; and the bits apart."""
    from sparkprep.images.phash import hamming, phash_of_bytes
    from sparkprep.preprocess.processed_rows import hashed_outputs
    from sparkprep.preprocess.transform import TransformSpec

    spec = TransformSpec()
    datas = [open(p, "rb").read() for p in paths]

    def timed(fn):
        return best_ms(datas, fn, repeat)

    alone = timed(lambda d: hashed_outputs("ok", None, d, "k", 0, spec, hashed=False))
    v2 = timed(lambda d: hashed_outputs("ok", None, d, "k", 0, spec, hashed=True))
    v1 = timed(lambda d: (hashed_outputs("ok", None, d, "k", 0, spec, hashed=False), phash_of_bytes(d)))
    apart = collections.Counter(hamming(phash_of_bytes(d), pipeline_hash(d)) for d in datas)
    print(f"{len(datas)} photos under {os.path.dirname(os.path.dirname(paths[0]))}: transform {alone:.3f} ms; + phash-v2 from its decode "
          f"{v2:.3f} ms (+{v2 - alone:.3f}); + phash-v1's own decode {v1:.3f} ms (+{v1 - alone:.3f})")
    mean = sum(k * n for k, n in apart.items()) / len(datas)
    print(f"bits between phash-v1 and phash-v2: mean {mean:.2f}, histogram {dict(sorted(apart.items()))}")


def planted_quality(version="v1"):
    import make_planted

    from sparkprep.images.phash import hamming, phash_of_bytes

    files = make_planted.planted_files()
    hashed = phash_of_bytes if version == "v1" else pipeline_hash
    hashes = {p: hashed(d) for p, d in files.items()}
    print(f"hash: phash-{version}")
    paths = sorted(hashes)
    truth = make_planted.true_pairs(paths)
    distances = {(a, b): hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(paths, 2)}
    required = {p for p in truth if any(x.endswith("__original.jpg") for x in p)
                and not any(v in x for x in p for v in ("__crop20", "__crop10corner"))}
    print(f"planted set: {len(paths)} files, {len(truth)} true pairs, {len(required)} planted pairs "
          "(original with each copy; crops <= 10% of the area, centred)")
    print("threshold  recall(planted)  recall(all true pairs)  precision  false pairs")
    for threshold in range(0, 18, 2):
        found = {p for p, d in distances.items() if d <= threshold}
        tp = len(found & truth)
        print(f"{threshold:9d}  {len(found & required) / len(required):15.3f}  {tp / len(truth):22.3f}  "
              f"{tp / len(found) if found else 1:9.3f}  {len(found) - tp:11d}")
    by_kind = collections.defaultdict(list)
    for a, b in truth:
        original, copy = (a, b) if a.endswith("__original.jpg") else (b, a)
        if original.endswith("__original.jpg") and not copy.endswith("__original.jpg"):
            by_kind[copy.rsplit("__", 1)[1][:-4]].append(distances[(a, b)])
    print("distance of each copy to its original (20 photos): kind: sorted distances")
    for kind, values in sorted(by_kind.items()):
        print(f"  {kind:13s} {sorted(values)}")


def look_alike_scans(rows, copies_share=0.01, seed=0, anatomy=False):
    """(hashes, labels, planted pairs): scan_files' scans, hashed as ingest hashes them (phash-v1)."""
    from sparkprep.images.phash import phash_of_bytes

    datas, labels, planted = scan_files(rows, copies_share, seed, anatomy)
    return [phash_of_bytes(d) for d in datas], labels, planted


def pairs_within(hashes, threshold, chunk=1024):
    """How many pairs (i < j) are within `threshold` bits, by brute force."""
    import numpy as np

    from sparkprep.audit.calibrate import distances

    values = np.asarray(hashes, dtype=np.int64)
    count = 0
    for start in range(0, len(values), chunk):
        block = distances(values[start:start + chunk, None], values[None, :]) <= threshold
        rows = np.arange(start, min(start + chunk, len(values)))
        count += int((block & (np.arange(len(values))[None, :] > rows[:, None])).sum())
    return count


def calibration_quality(sizes):
    """The calibrated rule (sparkprep.audit.rule.near_rule) on look-alike scans with planted copies, and on the
    planted photos: the 64-bit threshold, or the angle between DCT directions where the 64-bit hash cannot tell
    the data apart (phash256's where the angle is not used); the chance pairs the rule lets through and the
    planted recall. The angle's pairs come from its search (sparkprep.audit.angles.pairs_within) and are checked
    against brute force over every pair."""
    import random

    import numpy as np

    import make_planted

    from sparkprep.audit import angles
    from sparkprep.audit.calibrate import SAMPLE_ROWS
    from sparkprep.audit.rule import near_rule
    from sparkprep.images.phash import phashes_of_bytes, words_to_int

    files = make_planted.planted_files()
    paths = sorted(files)
    sets = [("planted photos (20 photos x 11 versions + 12 quadrants)", [phashes_of_bytes(files[p]) for p in paths],
             [p.split("/")[0] for p in paths],
             {(paths.index(a), paths.index(b)) for a, b in make_planted.true_pairs(paths)})]
    patient_of = {}
    for anatomy in (False, True):
        for n in sizes:
            patients = []
            datas, labels, planted = scan_files(n, anatomy=anatomy, patients=patients)
            kind = "scans with per-patient anatomy (the demo's)" if anatomy else "look-alike scans (--look-alike)"
            name = f"{kind}, {len(datas):,} rows with {len(planted)} planted copies"
            patient_of[name] = patients if anatomy else None
            sets.append((name, [phashes_of_bytes(d) for d in datas], labels, set(planted)))
    print("data | rows | rule | expected chance pairs | chance pairs found (pairs the rule keeps that are not "
          "planted; of them, two slices of one patient) | planted recall | planted recall at a fixed 8 | "
          "rule seconds | search: pairs compared, seconds")
    for name, signatures, labels, planted in sets:
        hashes, longs = [h for h, *_ in signatures], [words_to_int(w) for _, w, _ in signatures]
        rng = random.Random(0)
        sample = sorted(rng.sample(range(len(hashes)), min(SAMPLE_ROWS, len(hashes))))
        counts = collections.Counter(labels)
        start = time.perf_counter()
        rule = near_rule([hashes[i] for i in sample], [signatures[i][1] for i in sample],
                         [labels[i] for i in sample], dict(counts), directions=[signatures[i][2] for i in sample])
        seconds = time.perf_counter() - start
        patients, slices, search = patient_of.get(name), "-", "-"
        if rule.angle is not None:
            x = angles.unit(np.stack([d for _, _, d in signatures]))
            start = time.perf_counter()
            i, j, _, compared = angles.pairs_within(x, rule.angle, rule.axes)
            search = f"{compared:,}, {time.perf_counter() - start:.1f} s"
            kept_pairs = set(zip(i.tolist(), j.tolist()))
            brute = set()
            for first in range(0, len(x), 2048):
                rows = np.arange(first, min(first + 2048, len(x)))
                a, b = np.nonzero((angles.degrees(x[rows] @ x.T) <= rule.angle) & (np.arange(len(x)) > rows[:, None]))
                brute |= set(zip((a + first).tolist(), b.tolist()))
            search += "; equal to brute force" if brute == kept_pairs else f"; MISSED {len(brute - kept_pairs)}"
            found_planted = sum(p in kept_pairs for p in planted)
            chance = [p for p in kept_pairs if p not in planted]
            expected, shown = rule.angle_calibration.expected[rule.angle], f"angle {rule.angle:g} degrees"
        else:
            def near(i, j):
                return bin((hashes[i] ^ hashes[j]) & (2 ** 64 - 1)).count("1") <= rule.threshold and (
                    not rule.confirmed or bin(longs[i] ^ longs[j]).count("1") <= rule.long_threshold)

            found_planted = sum(near(i, j) for i, j in planted)
            chance = [(i, j) for i, j in pairs_list(hashes, rule.threshold) if near(i, j) and (i, j) not in planted]
            if rule.confirmed:
                expected = rule.long_calibration.expected[rule.long_threshold]
                shown = f"{rule.threshold} bits; phash256 {rule.long_threshold} bits"
            else:
                expected, shown = rule.calibration.expected[rule.threshold], f"{rule.threshold} bits"
        if patients is not None:
            slices = sum(patients[i] == patients[j] for i, j in chance)
        apart = [bin((hashes[i] ^ hashes[j]) & (2 ** 64 - 1)).count("1") for i, j in planted]
        recall = found_planted / len(planted) if planted else 1.0
        recall8 = sum(d <= 8 for d in apart) / len(planted) if planted else 1.0
        print(f"{name} | {len(hashes):,} | {shown} | {expected:.3g} | {len(chance)}; {slices} | "
              f"{recall:.3f} | {recall8:.3f} | {seconds:.1f} | {search}")
        print(f"    64-bit: {rule.calibration.reason}")
        if rule.angle_calibration is not None:
            print(f"    angle: {rule.angle_calibration.reason} (copies set aside: "
                  f"{rule.angle_calibration.set_aside}; power {rule.angle_calibration.powers})")
        if rule.long_calibration is not None:
            print(f"    phash256: {rule.long_calibration.reason}")


def pairs_list(hashes, threshold, chunk=1024):
    """Every pair (i < j) within `threshold` bits, by brute force."""
    import numpy as np

    from sparkprep.audit.calibrate import distances

    values = np.asarray(hashes, dtype=np.int64)
    out = []
    for start in range(0, len(values), chunk):
        block = distances(values[start:start + chunk, None], values[None, :]) <= threshold
        rows = np.arange(start, min(start + chunk, len(values)))
        i, j = np.nonzero(block & (np.arange(len(values))[None, :] > rows[:, None]))
        out.extend(zip((i + start).tolist(), j.tolist()))
    return out


def balls(edges, radius):
    """The rejected rule, for comparison: greedy balls (best-connected free node first, taking every free
    node within `radius` links). It splits chains into small clusters, which then get merged."""
    from sparkprep.audit.bands import neighbour_links

    neighbours = neighbour_links((a, b, 1) for a, b in edges)
    centre = {}
    for c in sorted(neighbours, key=lambda n: (-len(neighbours[n]), n)):
        if c in centre:
            continue
        centre[c], frontier = c, [c]
        for _ in range(radius):
            frontier = [y for x in frontier for y in neighbours[x] if y not in centre and not centre.__setitem__(y, c)]
    smallest = {}
    for node, c in centre.items():
        smallest[c] = min(smallest.get(c, node), node)
    return {node: smallest[c] for node, c in centre.items()}


def cluster_quality(sizes, threshold=8):
    """What --near-duplicates merge would merge at a fixed threshold, per cluster rule: connected components
    (size-limited), components that also need a centre within r links of every member (what merge does,
    r = 2: sparkprep.audit.bands.centred_components), and greedy balls of radius r. On the planted photos
    (every pair of one photo's versions is true) and on look-alike scans with 1% planted copies (every
    other pair within the threshold is chance): true pairs kept in one merged cluster, rows merged with
    rows they are no copy of, the largest merged cluster."""
    import make_planted

    from sparkprep.audit.bands import centred_components
    from sparkprep.audit.policy import merge_limit
    from sparkprep.images.phash import phash_of_bytes

    files = make_planted.planted_files()
    paths = sorted(files)
    sets = [("planted photos", [phash_of_bytes(files[p]) for p in paths],
             {(paths.index(a), paths.index(b)) for a, b in make_planted.true_pairs(paths)})]
    for n in sizes:
        hashes, _, planted = look_alike_scans(n)
        sets.append((f"look-alike scans, {len(hashes):,} rows, {len(planted)} planted copies", hashes, set(planted)))
        hashes, _, planted = look_alike_scans(n, anatomy=True)
        sets.append((f"the demo's scans, {len(hashes):,} rows, {len(planted)} planted copies", hashes, set(planted)))

    def centred(edges, r):
        found = centred_components([(a, b, 1) for a, b in edges], 10 ** 6, r)
        return {node: cluster if centre is not None else None for node, (cluster, centre) in found.items()}

    rules = [("components", lambda e: centred(e, 10 ** 6))] + \
        [(f"components with a centre within {r} links", lambda e, r=r: centred(e, r)) for r in (1, 2, 3)] + \
        [(f"greedy balls of radius {r}", lambda e, r=r: balls(e, r)) for r in (1, 2)]
    print(f"data | rule | true pairs in one merged cluster | rows merged with rows they copy nothing of | "
          f"largest merged (limit) | seconds   (fixed threshold {threshold})")
    for name, hashes, truth in sets:
        edges = [(f"{i:07d}", f"{j:07d}") for i, j in pairs_list(hashes, threshold)]
        limit = merge_limit(len(hashes))
        copied = collections.defaultdict(set)
        for i, j in truth:
            copied[i].add(j)
            copied[j].add(i)
        for rule, fn in rules:
            start = time.perf_counter()
            cluster = fn(edges)
            seconds = time.perf_counter() - start
            members = collections.defaultdict(list)
            for node, c in cluster.items():
                if c is not None:
                    members[c].append(int(node))
            merged = {c: m for c, m in members.items() if len(m) <= limit}
            where = {node: c for c, m in merged.items() for node in m}
            kept = sum(1 for i, j in truth if i in where and where.get(i) == where.get(j))
            strays = sum(1 for m in merged.values() if len(m) > 1 for node in m if not copied[node] & set(m))
            print(f"{name} | {rule} | {kept}/{len(truth)} | {strays} | "
                  f"{max(map(len, merged.values()), default=0)} ({limit}) | {seconds:.2f}")


def search_times(sizes, threshold):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from sparkprep.audit.spark.search import near_duplicate_audit
    from sparkprep.spark.session import build_session

    spark = build_session("bench-near", {"spark.master": "local[2]", "spark.sql.shuffle.partitions": "8",
                                         "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "4g"})
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    for n in sizes:
        base = spark.range(n).select(F.col("id"), F.xxhash64(F.col("id")).alias("phash"))
        # 1% of the rows get a copy with 1..8 of its bits flipped (flip mask from the id's own hash)
        flips = F.lit(0).cast("long")
        for b in range(8):
            bit = F.expr(f"shiftleft(cast(1 as bigint), cast(pmod(xxhash64(id, {b}), 64) as int))")
            flips = F.when(F.pmod(F.col("id"), F.lit(8)) >= b, flips.bitwiseOR(bit)).otherwise(flips)
        copies = base.where(F.pmod(F.col("id"), F.lit(100)) == 0).select(
            (F.col("id") + F.lit(n)).alias("id"), F.col("phash").bitwiseXOR(flips).alias("phash"))
        rows = base.unionByName(copies).select(
            F.col("id").cast("string").alias("key"), F.col("phash"), F.lit("ok").alias("status"),
            F.lit("x").alias("label"), F.concat(F.lit("/p/"), F.col("id").cast("string")).alias("path"),
            F.when(F.pmod(F.xxhash64(F.col("id"), F.lit(99)), F.lit(10)) < 8, F.lit("train"))
            .otherwise(F.lit("test")).alias("split")).cache()
        total = rows.count()
        start = time.perf_counter()
        audit = near_duplicate_audit(rows, threshold, 500, splits=["test", "train"])
        seconds = time.perf_counter() - start
        stats = audit.stats
        print(f"{total} hashes: {seconds:.1f} s; {stats['layout']}; {stats['hash_pairs']} pairs within {threshold} "
              f"bits, {stats['clusters']['count']} clusters ({stats['clusters']['method']})")
        results.append((total, seconds))
        rows.unpersist()
    (n1, s1), (n2, s2) = results[0], results[-1]
    if n2 > n1:
        print(f"marginal: {(s2 - s1) / (n2 - n1) * 1e6:.1f} s per million hashes between {n1} and {n2} "
              f"({(n2 - n1) / (s2 - s1):.0f} hashes/s)")
    spark.stop()


def long_hash_quality(sizes):
    """Recall and chance pairs of the 64-bit pHash, a 256-bit pHash and the angle between the 16x16 DCT
    blocks the 256-bit one takes its bits from, by brute force over every pair (in blocks of rows): the
    planted photos (every pair of one photo's versions is true) and both scan generators with 1% planted
    copies, at each size."""
    import numpy as np

    import make_planted

    from sparkprep.audit.angles import unit
    from sparkprep.images.phash import phashes_of_bytes

    def bits(*words):
        return np.unpackbits(np.asarray(words, ">i8").view(np.uint8)).astype(bool)

    files = make_planted.planted_files()
    paths = sorted(files)
    index = {p: i for i, p in enumerate(paths)}
    sets = [("planted photos", [files[p] for p in paths],
             {tuple(sorted((index[a], index[b]))) for a, b in make_planted.true_pairs(paths)})]
    for rows in sizes:
        for anatomy in (True, False):
            datas, _, planted = scan_files(rows, anatomy=anatomy)
            sets.append((f"{'the demo' if anatomy else '--look-alike'}'s scans ({len(datas):,} rows)", datas, planted))
    print("data | signature | threshold | recall | chance pairs (not planted) | allowed (1 per 10,000 rows)")

    def hamming(matrix, rows):
        ones = matrix.sum(axis=1)
        return ones[rows, None] + ones[None, :] - 2 * matrix[rows] @ matrix.T

    def degrees(matrix, rows):
        return np.degrees(np.arccos(np.clip(matrix[rows] @ matrix.T, -1, 1)))

    for name, datas, truth in sets:
        signatures = [phashes_of_bytes(d) for d in datas]
        for label, features, distance, thresholds in (
                ("64-bit pHash (bits)", [bits(h) for h, _, _ in signatures], hamming, (0, 2, 4, 8)),
                ("256-bit pHash (bits)", [bits(*w) for _, w, _ in signatures], hamming, (0, 4, 8, 12, 16, 24, 32, 48)),
                ("16x16 DCT block, angle (degrees)", unit([d for _, _, d in signatures]), degrees,
                 (1, 1.5, 2, 2.5, 3, 4))):
            matrix = np.asarray(features, dtype=np.float32)
            # the planted pairs' distances come from the same blocks as the counts: float32 products of other
            # shapes round otherwise, and a pair at a threshold could be counted on one side and not the other
            first, second = (np.array(side, np.int64) for side in zip(*sorted(truth)))
            apart = np.empty(len(first))
            within = np.zeros(len(thresholds), np.int64)
            for start in range(0, len(matrix), 2048):
                rows = np.arange(start, min(start + 2048, len(matrix)))
                block = distance(matrix, rows)
                upper = np.arange(len(matrix))[None, :] > rows[:, None]
                within += [int(((block <= t) & upper).sum()) for t in thresholds]
                mine = (first >= rows[0]) & (first <= rows[-1])
                apart[mine] = block[first[mine] - start, second[mine]]
            for t, count in zip(thresholds, within):
                found = int((apart <= t).sum())
                allowed = len(datas) / 10_000
                print(f"{name} | {label} | {t} | {found / len(truth):.3f} | {count - found} | {allowed:.2g}")


def scan_files(rows, copies_share=0.01, seed=0, anatomy=False, patients=None):
    """(JPEG bytes, labels, planted pairs): synthetic scans of six modalities (the older look-alike ones, or
    with anatomy: the demo's scans, five slices per patient), and `copies_share` of them copied once
    each: re-encoded at quality 60, resized to 80%, or brightened 10%. patients: a list that gets each
    file's (class, patient), when given."""
    from PIL import Image, ImageEnhance

    import make_sample

    def jpeg(image, quality=90):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()

    per_class = rows // len(make_sample.CLASSES)
    datas, labels, planted = [], [], []
    every = max(1, round(1 / copies_share)) if copies_share else 0
    for ci, name in enumerate(make_sample.CLASSES):
        for i in range(per_class):
            patient, slice_ = divmod(i, make_sample.SLICES_PER_PATIENT)
            image = make_sample.patient_scan(ci, ci * 1_000_003 + patient + seed, slice_) if anatomy else \
                make_sample.synthetic_scan(ci, ci * 1_000_003 + i + seed)
            datas.append(jpeg(image))
            labels.append(name)
            if patients is not None:
                patients.append((ci, patient))
            if every and (ci * per_class + i) % every == 0:
                kind = (ci * per_class + i) // every % 3
                copy = (jpeg(image, 60) if kind == 0 else jpeg(image.resize((51, 51), Image.Resampling.BICUBIC))
                        if kind == 1 else jpeg(ImageEnhance.Brightness(image).enhance(1.1)))
                planted.append((len(datas) - 1, len(datas)))
                datas.append(copy)
                labels.append(name)
                if patients is not None:
                    patients.append((ci, patient))
    return datas, labels, planted


def audit_time(sizes, photos):
    """The audit as users run it: `split --near-duplicates merge` on scans of both generators at `sizes`, each
    with the generator's planted copies (2.5% of the scans, a third filed under another class), and the
    pipeline on the look-alike photos. Per run: the rule, the audit's own seconds and per row, the pairs it
    found, the planted copies keyed with their original, the largest merged cluster and the rows the merge
    moved; the goals: the audit at most 15% of the pipeline, its time per row at the largest size within 2x of
    the smallest's, merge moving at most the planted rows, and no merged cluster larger than a planted group."""
    import json
    import pathlib

    import pyarrow.parquet as pq

    import local_submit
    import make_sample

    base = local_submit.REPO / "bench" / "near"

    def run(job, tree, out, *flags):
        wall = local_submit.timed_spark_submit(job, "--input", tree, "--output", out, *flags)
        report = json.loads((out / "_run_report.json").read_text())
        table = report["stages"]["splits"] if job == "pipeline" else report
        near = table["near_duplicates"]
        return wall, report["seconds"], near

    def rule(near):
        angle = near.get("angle") or {}
        if angle.get("used"):
            return f"angle {angle['threshold_degrees']:g} degrees ({angle['compared_pairs']:,} pairs compared)"
        return f"{near['threshold']} bits ({near['layout']})"

    per_row = {}
    print("data | rows | rule | audit s | audit ms per row | pairs found | planted keyed with their original | "
          "largest merged (planted group) | rows moved (planted copies) | run s (report) | wall s")
    for look_alike in (False, True):
        kind = "look-alike scans (--look-alike)" if look_alike else "scans with per-patient anatomy (the demo's)"
        for n in sizes:
            tree = base / f"planted-scans{'-look-alike' if look_alike else ''}-{n}"
            if not tree.exists():
                make_sample.make_tree(str(tree), n // len(make_sample.CLASSES), True, look_alike)
            out = base / "out"
            wall, seconds, near = run("split", tree, out, "--ratios", "0.8,0.1,0.1", "--near-duplicates", "merge")
            rows = near["hashed_rows"]
            per_row[(look_alike, n)] = near["seconds"] / rows
            planted = make_sample.planted_pairs(str(tree))
            key = {r["rel_path"]: r["key"] for r in pq.read_table(str(out), columns=["rel_path", "key"]).to_pylist()}
            keyed = sum(key.get(a) is not None and key.get(a) == key.get(b) for a, b in planted)
            merge = near["merge"]
            print(f"{kind} | {rows:,} | {rule(near)} | {near['seconds']:.2f} | {near['seconds'] / rows * 1e3:.3f} | "
                  f"{near['pairs_within_splits'] + near['pairs_across_splits']:,} | {keyed} / {len(planted)} | "
                  f"{merge['largest_merged']} (3: a scan, its copy and an exact duplicate) | {merge['rows_moved']} "
                  f"({len(planted)}) | {seconds:.1f} | {wall:.1f}")
    pipeline = base / "pipeline"
    wall, seconds, near = run("pipeline", pathlib.Path(photos), pipeline)
    share = near["seconds"] / seconds
    found = near["pairs_within_splits"] + near["pairs_across_splits"]
    print(f"pipeline on {photos} | {near['hashed_rows']:,} | {rule(near)} | {near['seconds']:.2f} | "
          f"{near['seconds'] / near['hashed_rows'] * 1e3:.3f} | {found:,} | - | - | - | {seconds:.1f} | {wall:.1f}")
    print(f"goal: audit <= 15% of the pipeline's time: {share:.1%} ({'met' if share <= 0.15 else 'NOT met'})")
    lo, hi = min(sizes), max(sizes)
    for look_alike in (False, True):
        ratio = per_row[(look_alike, hi)] / per_row[(look_alike, lo)]
        print(f"goal: time per row at {hi:,} within 2x of {lo:,} ({'--look-alike' if look_alike else 'anatomy'} "
              f"scans): {ratio:.2f}x ({'met' if ratio <= 2 else 'NOT met'})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="bench/photos1500")
    parser.add_argument("--small", default="data/mednist")
    parser.add_argument("--sizes", default="50000,100000")
    parser.add_argument("--threshold", type=int, default=None)
    parser.add_argument("--calibration", default=None, metavar="SIZES",
                        help="only the calibration figures, on look-alike scans of these sizes, e.g. 5000,50000")
    parser.add_argument("--clusters", default=None, metavar="SIZES",
                        help="only the merge's cluster rules at a fixed threshold (--threshold, default 8), e.g. 5000")
    parser.add_argument("--audit-time", default=None, metavar="SIZES",
                        help="only the audit's time through spark-submit: split on look-alike scans of these sizes "
                             "(e.g. 5000,50000) and the pipeline on --photos")
    parser.add_argument("--long-hash", default=None, metavar="SIZES",
                        help="only the 64-bit pHash against a 256-bit one and the angle between DCT blocks, on the "
                             "planted photos and scans of each generator at these sizes (e.g. 5000,50000)")
    parser.add_argument("--hash-cost", action="store_true",
                        help="only phash-v1 against phash-v2: cost per photo, bits apart, planted recall")
    args = parser.parse_args()
    if args.hash_cost:
        photos = sorted(glob.glob(f"{args.photos}/**/*.jp*g", recursive=True))
        hash_cost(photos[::max(1, len(photos) // 600)][:600])  # every source photo's crops, not the first one's
        planted_quality("v2")
        return
    if args.long_hash:
        long_hash_quality([int(n) for n in args.long_hash.split(",")])
        return
    if args.audit_time:
        audit_time([int(s) for s in args.audit_time.split(",")], args.photos)
        return
    if args.calibration:
        calibration_quality([int(s) for s in args.calibration.split(",")])
        return
    if args.clusters:
        cluster_quality([int(s) for s in args.clusters.split(",")], args.threshold or 8)
        return
    from sparkprep.audit.bands import DEFAULT_THRESHOLD

    for name, root in (("photos", args.photos), ("64 px sample", args.small)):
        paths = sorted(glob.glob(f"{root}/**/*.jp*g", recursive=True))[:600]
        if not paths:
            print(f"{name}: no JPEGs under {root} (make demo / bench_preprocess.py make them)")
            continue
        probe, both, reference = per_image_cost(paths)
        print(f"{name} (good JPEGs among {len(paths)} from {root}): probe {probe:.3f} ms, probe + phash {both:.3f} ms "
              f"(+{both - probe:.3f} ms per image)"
              + (f"; imagehash.phash of a full decode {reference:.3f} ms" if reference else ""))
    planted_quality()
    search_times([int(s) for s in args.sizes.split(",")], args.threshold or DEFAULT_THRESHOLD)


if __name__ == "__main__":
    main()
